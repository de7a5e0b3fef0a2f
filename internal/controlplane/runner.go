package controlplane

import "log/slog"

// Replicas runs the replicas of one revision; the controller scales it and
// reads its ready backends. *ReplicaSet (local processes) implements it;
// tests use a fake so the controller is unit-tested without processes.
type Replicas interface {
	// Scale starts or stops replicas until n are running (or starting).
	Scale(n int) error
	// Backends and GRPCBackends list the addresses of ready replicas.
	Backends() []string
	GRPCBackends() []string
	Status() []ReplicaStatus
	Logs(n int) map[string][]string
	// Close stops every replica and waits for them.
	Close()
}

// Runner makes the Replicas of revisions.
type Runner interface {
	// Replicas returns a stopped set for revision name, run from tmpl;
	// onChange is called after any replica's state changes.
	Replicas(spec ReplicaSpec, onChange func()) Replicas
}

// ReplicaSpec is what a runner needs to run one revision.
type ReplicaSpec struct {
	Service  string // ns/name
	Revision string
	Template ProcessTemplate
	LogDir   string
	PIDDir   string
}

// ProcessRunner runs replicas as supervised local processes.
type ProcessRunner struct {
	Logger *slog.Logger
}

var _ Runner = ProcessRunner{}
var _ Replicas = (*ReplicaSet)(nil)

// Replicas implements Runner.
func (p ProcessRunner) Replicas(spec ReplicaSpec, onChange func()) Replicas {
	rs := NewReplicaSet(spec.Revision, spec.Template, spec.LogDir, p.Logger, onChange)
	rs.pidDir = spec.PIDDir
	return rs
}
