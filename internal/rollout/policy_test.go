package rollout

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	good := []struct {
		name string
		ann  map[string]string
		want *Policy
	}{
		{"no policy", map[string]string{"other": "x"}, nil},
		{"steps only", map[string]string{AnnotationSteps: "10,25,50,100"},
			&Policy{Steps: []int{10, 25, 50}, Interval: DefaultInterval, MinRequests: DefaultMinRequests, MinLabelled: DefaultMinLabelled}},
		{"everything", map[string]string{
			AnnotationSteps:         " 5%, 50 ",
			AnnotationInterval:      "2s",
			AnnotationObjectives:    "error-rate<=0.01, mean-latency <= 50ms,p95-latency<=100ms",
			AnnotationMinRequests:   "20",
			AnnotationCompareStable: "true",
		}, &Policy{Steps: []int{5, 50}, Interval: 2 * time.Second, MinRequests: 20, CompareStable: true, MinLabelled: DefaultMinLabelled,
			Objectives: []Objective{{MetricErrorRate, 0.01}, {MetricMeanLatency, 0.05}, {MetricP95Latency, 0.1}}}},
		{"accuracy", map[string]string{
			AnnotationSteps:       "10,50",
			AnnotationObjectives:  "accuracy-drop<=0.01",
			AnnotationMinLabelled: "200",
		}, &Policy{Steps: []int{10, 50}, Interval: DefaultInterval, MinRequests: DefaultMinRequests, MinLabelled: 200,
			Objectives: []Objective{{MetricAccuracyDrop, 0.01}}}},
		{"regression and classification quality", map[string]string{
			AnnotationSteps:      "10,50",
			AnnotationObjectives: "mae-rise<=0.5, rmse-rise<=2.5,r2-drop<=0.05,f1-drop<=0.02,roc-auc-drop<=0.01,log-loss-rise<=0.1",
		}, &Policy{Steps: []int{10, 50}, Interval: DefaultInterval, MinRequests: DefaultMinRequests, MinLabelled: DefaultMinLabelled,
			Objectives: []Objective{{"mae-rise", 0.5}, {"rmse-rise", 2.5}, {"r2-drop", 0.05}, {"f1-drop", 0.02}, {"roc-auc-drop", 0.01}, {"log-loss-rise", 0.1}}}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy(tt.ann)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	bad := []struct {
		name    string
		ann     map[string]string
		wantErr string // the annotation the error must name, and a hint
	}{
		{"interval without steps", map[string]string{AnnotationInterval: "5s"}, AnnotationSteps},
		{"steps not numbers", map[string]string{AnnotationSteps: "10,x"}, AnnotationSteps + ` "10,x": step "x"`},
		{"steps decrease", map[string]string{AnnotationSteps: "50,10"}, "steps must increase"},
		{"step over 100", map[string]string{AnnotationSteps: "10,120"}, "outside 1..100"},
		{"100 not last", map[string]string{AnnotationSteps: "10,100,50"}, "100 may only be the last"},
		{"only 100", map[string]string{AnnotationSteps: "100"}, "at least one step below 100"},
		{"bad interval", map[string]string{AnnotationSteps: "10", AnnotationInterval: "soon"}, AnnotationInterval},
		{"tiny interval", map[string]string{AnnotationSteps: "10", AnnotationInterval: "1ms"}, "at least 100ms"},
		{"unknown metric", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "throughput<=5"}, `unknown metric "throughput"`},
		{"no operator", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "error-rate<0.1"}, "want METRIC<=LIMIT"},
		{"error rate over 1", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "error-rate<=5"}, "fraction in 0..1"},
		{"latency not a duration", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "mean-latency<=50"}, "duration such as 50ms"},
		{"twice", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "error-rate<=0.1,error-rate<=0.2"}, "given twice"},
		{"min requests", map[string]string{AnnotationSteps: "10", AnnotationMinRequests: "-1"}, AnnotationMinRequests},
		{"accuracy drop over 1", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "accuracy-drop<=2"}, "fraction in 0..1"},
		{"f1 drop over 1", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "f1-drop<=1.5"}, "fraction in 0..1"},
		{"negative mae rise", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "mae-rise<=-1"}, "number ≥ 0 (in the mae's units)"},
		{"rmse rise not a number", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "rmse-rise<=some"}, "number ≥ 0"},
		{"unknown lists quality objectives", map[string]string{AnnotationSteps: "10", AnnotationObjectives: "mse-rise<=1"}, "mae-rise, precision-drop"},
		{"min labelled", map[string]string{AnnotationSteps: "10", AnnotationMinLabelled: "0"}, AnnotationMinLabelled},
		{"min labelled without steps", map[string]string{AnnotationMinLabelled: "10"}, AnnotationSteps},
		{"compare", map[string]string{AnnotationSteps: "10", AnnotationCompareStable: "yes please"}, AnnotationCompareStable},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(tt.ann)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
