package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDescribeQualityReadsTheServiceFromMetrics(t *testing.T) {
	const metrics = `# TYPE ferry_quality_accuracy gauge
ferry_quality_accuracy{model="iris",namespace="default",revision="iris-predictor-00001",service="iris"} 0.95
ferry_quality_accuracy{model="iris",namespace="default",revision="iris-predictor-00002",service="iris"} 0.8
ferry_quality_accuracy{model="other",namespace="default",revision="other-predictor-00001",service="other"} 0.1
# TYPE ferry_quality_labelled_rows gauge
ferry_quality_labelled_rows{model="iris",namespace="default",revision="iris-predictor-00001",service="iris"} 600
ferry_quality_labelled_rows{model="iris",namespace="default",revision="iris-predictor-00002",service="iris"} 40
# TYPE ferry_ingress_feedback_total counter
ferry_ingress_feedback_total{namespace="default",result="joined",service="iris"} 640
ferry_ingress_feedback_total{namespace="default",result="unknown",service="iris"} 3
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(metrics))
	}))
	defer srv.Close()
	c := &client{server: srv.URL, http: srv.Client()}
	var out bytes.Buffer
	if err := c.describeQuality(t.Context(), &out, "default", "iris"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"iris-predictor-00001  iris   -         600       0.9500", "iris-predictor-00002  iris   -         40        0.8000", "joined 640", "unknown 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "other") {
		t.Errorf("another service's quality shown:\n%s", got)
	}
	out.Reset()
	if err := c.describeQuality(t.Context(), &out, "default", "nosuch"); err != nil || out.Len() != 0 {
		t.Errorf("service without quality: %q, %v", out.String(), err)
	}
}
