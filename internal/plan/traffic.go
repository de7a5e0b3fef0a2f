package plan

// Rollout is a component's revision history as KServe reports it.
type Rollout struct {
	LatestCreated     string `json:"latestCreatedRevision,omitempty"`
	LatestReady       string `json:"latestReadyRevision,omitempty"`
	LatestRolledout   string `json:"latestRolledoutRevision,omitempty"`
	PreviousRolledout string `json:"previousRolledoutRevision,omitempty"`
}

// TrafficTarget is one revision's share of a component's traffic.
type TrafficTarget struct {
	Revision string `json:"revisionName"`
	Percent  int    `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	Latest   bool   `json:"latestRevision,omitempty"`
}

// Traffic computes the split for a component, following KFServing 0.5's
// Knative reconciler:
//
//   - With canaryTrafficPercent P, a previous rolled-out revision, and a
//     latest ready revision that differs from it: P % to the latest ready
//     revision, 100−P % to the rolled-out one (tag "prev").
//   - Rollback: when the latest ready revision is already the rolled-out
//     one (and the latest created), P < 100 sends 100−P % to the previous
//     rolled-out revision; canaryTrafficPercent 0 pins all traffic there.
//   - Otherwise 100 % to the latest ready revision.
//
// Only ready revisions receive traffic: a new revision that never becomes
// ready gets none. With no ready revision there are no targets.
func Traffic(r Rollout, canary *int) []TrafficTarget {
	if r.LatestReady == "" {
		return nil
	}
	latest := TrafficTarget{Revision: r.LatestReady, Percent: 100, Latest: true}
	if canary == nil || *canary >= 100 {
		return []TrafficTarget{latest}
	}
	p := max(*canary, 0)
	prev := ""
	switch {
	case r.LatestRolledout != "" && r.LatestReady != r.LatestRolledout:
		prev = r.LatestRolledout
	case r.LatestRolledout == r.LatestReady && r.LatestReady == r.LatestCreated && r.PreviousRolledout != "":
		prev = r.PreviousRolledout
	}
	if prev == "" || prev == r.LatestReady {
		return []TrafficTarget{latest}
	}
	latest.Percent = p
	return []TrafficTarget{latest, {Revision: prev, Percent: 100 - p, Tag: "prev"}}
}

// Observe updates the rolled-out revisions after traffic is applied: when
// the latest ready revision serves 100 %, it becomes the latest rolled-out
// one and the former becomes the previous.
func (r *Rollout) Observe(traffic []TrafficTarget) {
	for _, t := range traffic {
		if t.Latest && t.Percent == 100 && t.Revision != r.LatestRolledout {
			if r.LatestRolledout != "" {
				r.PreviousRolledout = r.LatestRolledout
			}
			r.LatestRolledout = t.Revision
		}
	}
}
