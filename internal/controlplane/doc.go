// Package controlplane is `ferry up`'s brain: it stores InferenceServices,
// turns every component spec change into an immutable revision, runs the
// revisions' replicas through a Runner, and publishes routes to the ingress
// router. What to run, route and report is decided by internal/plan, which
// the Kubernetes operator shares; this package gathers what plan needs
// (stored objects, what the runner observes) and carries out its answer.
// It is never on the request path.
package controlplane

import "github.com/ferryserve/ferry/internal/plan"

// Rollout and TrafficTarget are plan's, kept here for callers that compute
// a split the way ferry up does.
type (
	Rollout       = plan.Rollout
	TrafficTarget = plan.TrafficTarget
)

// Traffic is plan.Traffic.
func Traffic(r Rollout, canary *int) []TrafficTarget { return plan.Traffic(r, canary) }
