package plan

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ferryserve/ferry/internal/api"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from what plan answers")

// caseFile is a scenario: steps planned in order, each step's status fed
// to the next as the previous one, as a controller would.
type caseFile struct {
	Steps []struct {
		// Note says what KFServing 0.5 does here; copied into the golden.
		Note string `json:"note"`
		// At is the step's clock, in seconds from the scenario's start.
		At         int              `json:"at"`
		Components map[string]Input `json:"components"`
	} `json:"steps"`
}

// stepGolden is what the golden file records per step.
type stepGolden struct {
	Note       string                     `json:"note,omitempty"`
	Components map[string]componentGolden `json:"components"`
	Conditions []string                   `json:"conditions"`
}

type componentGolden struct {
	Rollout   Rollout  `json:"rollout"`
	Traffic   []string `json:"traffic,omitempty"`
	Keep      []string `json:"keep,omitempty"`
	Condition string   `json:"condition"`
	Events    []string `json:"events,omitempty"`
}

func condString(c api.Condition, start time.Time) string {
	s := fmt.Sprintf("%s=%s", c.Type, c.Status)
	if c.Reason != "" {
		s += " " + c.Reason
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	if !c.LastTransitionTime.IsZero() {
		s += fmt.Sprintf(" (since %ds)", int(c.LastTransitionTime.Sub(start).Seconds()))
	}
	return s
}

// TestScenarios plans every testdata scenario and compares the plans with
// the golden files (-update rewrites them).
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".golden.yaml") })
	if len(files) < 10 {
		t.Fatalf("found %d scenarios in testdata, want every rollout case", len(files))
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var cf caseFile
			if err := yaml.UnmarshalStrict(raw, &cf); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var prevConds []api.Condition
			prev := map[string]api.ComponentStatus{}
			var got []stepGolden
			for _, st := range cf.Steps {
				in := ServiceInput{Components: map[string]Input{}, Previous: prevConds, Now: start.Add(time.Duration(st.At) * time.Second)}
				for name, ci := range st.Components {
					ci.Previous = prev[name]
					in.Components[name] = ci
				}
				out := Service(in)
				g := stepGolden{Note: st.Note, Components: map[string]componentGolden{}}
				for name, co := range out.Components {
					cg := componentGolden{Rollout: co.Rollout, Keep: co.Keep, Condition: condString(co.Condition, start)}
					for _, tt := range co.Traffic {
						s := fmt.Sprintf("%s %d%%", tt.Revision, tt.Percent)
						if tt.Tag != "" {
							s += " tag=" + tt.Tag
						}
						if tt.Latest {
							s += " latest"
						}
						cg.Traffic = append(cg.Traffic, s)
					}
					for _, e := range co.Events {
						cg.Events = append(cg.Events, e.Type+" "+e.Reason+": "+e.Message)
					}
					g.Components[name] = cg
					if in.Components[name].Error == "" {
						prev[name] = co.Status()
					}
				}
				for _, c := range out.Conditions {
					g.Conditions = append(g.Conditions, condString(c, start))
				}
				prevConds = out.Conditions
				got = append(got, g)
			}
			b, err := yaml.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/plan -update)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("%s differs from the plan; got:\n%s", golden, b)
			}
		})
	}
}

// TestComponentIsPure: the same input gives the same plan, and planning
// does not change the input.
func TestComponentIsPure(t *testing.T) {
	p10 := 10
	pct := int64(100)
	in := Input{
		Revisions:            []string{"a", "b"},
		CanaryTrafficPercent: &p10,
		Observed:             map[string]Observed{"a": {Ready: true}, "b": {Ready: true}},
		Previous: api.ComponentStatus{LatestCreatedRevision: "b", LatestReadyRevision: "a", LatestRolledoutRevision: "a",
			Traffic: []api.TrafficTarget{{RevisionName: "a", Percent: &pct}}},
	}
	a, b := Component("predictor", in), Component("predictor", in)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("two plans of one input differ:\n%v\n%v", a, b)
	}
	if in.Previous.LatestRolledoutRevision != "a" || len(in.Revisions) != 2 {
		t.Fatalf("input changed: %+v", in)
	}
	if len(a.Traffic) != 2 || a.Traffic[0].Revision != "b" || a.Traffic[0].Percent != 10 {
		t.Fatalf("canary split: %+v", a.Traffic)
	}
}

func TestRuns(t *testing.T) {
	prev := api.ComponentStatus{LatestReadyRevision: "r2", LatestRolledoutRevision: "r1", PreviousRolledoutRevision: "gone"}
	got := Runs([]string{"r1", "r2", "r3"}, prev)
	if want := []string{"r3", "r2", "r1"}; !slices.Equal(got, want) {
		t.Fatalf("Runs = %v, want %v (latest first, then what the status may route to; unknown names skipped)", got, want)
	}
	if got := Runs(nil, prev); got != nil {
		t.Fatalf("Runs(no revisions) = %v", got)
	}
}

func TestRevisionNames(t *testing.T) {
	for _, tc := range []struct {
		rev string
		n   int
	}{
		{RevisionName("sklearn-iris", "predictor", 3), 3},
		{RevisionName("a", "transformer", 12345), 12345},
		{"no-number-x", 0},
		{"nodash", 0},
		{"x--1", 1},
	} {
		if got := RevisionNumber(tc.rev); got != tc.n {
			t.Errorf("RevisionNumber(%q) = %d, want %d", tc.rev, got, tc.n)
		}
	}
	if got := RevisionName("sklearn-iris", "predictor", 1); got != "sklearn-iris-predictor-00001" {
		t.Errorf("RevisionName = %q", got)
	}
}

func TestMinReplicas(t *testing.T) {
	p := func(v int64) *int64 { return &v }
	revs := []string{"r1", "r2", "r3"}
	prev := api.ComponentStatus{Traffic: []api.TrafficTarget{{RevisionName: "r2", Percent: p(90)}, {RevisionName: "r1", Percent: p(0)}}}
	for _, tc := range []struct {
		rev  string
		prev api.ComponentStatus
		want int
	}{
		{"r3", prev, 2},                  // the latest created: always
		{"r2", prev, 2},                  // routed
		{"r1", prev, 0},                  // kept at 0 %: may go to zero
		{"r1", api.ComponentStatus{}, 2}, // no status yet: the spec's minimum
		{"gone", prev, 0},                // unknown: no traffic
		{"r2", api.ComponentStatus{Traffic: []api.TrafficTarget{{RevisionName: "r2"}}}, 0}, // no percent
	} {
		if got := MinReplicas(tc.rev, revs, tc.prev, 2); got != tc.want {
			t.Errorf("MinReplicas(%s) = %d, want %d", tc.rev, got, tc.want)
		}
	}
}
