package plan

import (
	"fmt"
	"testing"
)

func pct(p int) *int { return &p }

func show(ts []TrafficTarget) string {
	s := ""
	for _, t := range ts {
		s += fmt.Sprintf("%s=%d%s ", t.Revision, t.Percent, map[bool]string{true: "(" + t.Tag + ")", false: ""}[t.Tag != ""])
	}
	return s
}

// TestRolloutScenario walks the KFServing 0.5 canary samples in order:
// default → canary 10 % → promote → canary again → pin (0 %) → unpin.
func TestRolloutScenario(t *testing.T) {
	var r Rollout
	step := func(name string, created, ready string, canary *int, want string) {
		t.Helper()
		r.LatestCreated = created
		r.LatestReady = ready
		tr := Traffic(r, canary)
		if got := show(tr); got != want {
			t.Fatalf("%s: traffic %q, want %q (rollout %+v)", name, got, want, r)
		}
		r.Observe(tr)
	}
	step("nothing ready", "r1", "", nil, "")
	step("first revision", "r1", "r1", nil, "r1=100 ")
	if r.LatestRolledout != "r1" || r.PreviousRolledout != "" {
		t.Fatalf("after first: %+v", r)
	}
	step("canary not ready yet", "r2", "r1", pct(10), "r1=100 ")
	step("canary ready", "r2", "r2", pct(10), "r2=10 r1=90(prev) ")
	if r.LatestRolledout != "r1" {
		t.Fatalf("canary must not roll out: %+v", r)
	}
	step("promote", "r2", "r2", nil, "r2=100 ")
	if r.LatestRolledout != "r2" || r.PreviousRolledout != "r1" {
		t.Fatalf("after promote: %+v", r)
	}
	step("pin to previous (rollback)", "r2", "r2", pct(0), "r2=0 r1=100(prev) ")
	step("partial rollback", "r2", "r2", pct(30), "r2=30 r1=70(prev) ")
	step("unpin", "r2", "r2", nil, "r2=100 ")
	step("broken new revision never ready", "r3", "r2", pct(10), "r2=100 ")
	step("canary 100 is a promotion", "r4", "r4", pct(100), "r4=100 ")
	if r.LatestRolledout != "r4" || r.PreviousRolledout != "r2" {
		t.Fatalf("after 100%%: %+v", r)
	}
}

func TestTrafficTable(t *testing.T) {
	tests := []struct {
		r      Rollout
		canary *int
		want   string
	}{
		{Rollout{LatestCreated: "a", LatestReady: "a"}, pct(10), "a=100 "}, // no previous: all to latest
		{Rollout{LatestCreated: "b", LatestReady: "b", LatestRolledout: "a"}, pct(25), "b=25 a=75(prev) "},
		{Rollout{LatestCreated: "b", LatestReady: "b", LatestRolledout: "a"}, pct(-5), "b=0 a=100(prev) "},
		{Rollout{LatestCreated: "c", LatestReady: "b", LatestRolledout: "b", PreviousRolledout: "a"}, pct(0), "b=100 "}, // c pending: no rollback rule
	}
	for i, tc := range tests {
		if got := show(Traffic(tc.r, tc.canary)); got != tc.want {
			t.Errorf("case %d: %q, want %q", i, got, tc.want)
		}
	}
}
