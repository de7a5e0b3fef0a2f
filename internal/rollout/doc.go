// Package rollout owns metric-driven progressive delivery: a policy read
// from an InferenceService's annotations, a pure Decide function that
// turns a step's metrics into advance, hold, promote or rollback, and a
// Runner that applies those decisions by changing canaryTrafficPercent
// through the control plane's ordinary apply path, as Iter8 does for
// KFServing. The controller knows nothing of rollouts: the Runner is a
// client of it, beside it.
//
// State lives in annotations on the service, so a restarted ferry up
// resumes where it stopped.
package rollout
