package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/ferryserve/ferry/internal/supervisor"
)

// ProcessTemplate builds one replica's supervisor config from the ports it
// was given.
type ProcessTemplate func(httpPort, grpcPort int) supervisor.Config

// ReplicaSet runs the replicas of one revision. Scale changes their number;
// Backends lists the ready ones. It is safe for concurrent use.
type ReplicaSet struct {
	name     string
	tmpl     ProcessTemplate
	logDir   string
	pidDir   string // where each replica's PID file goes; empty: none
	log      *slog.Logger
	onChange func()

	mu       sync.Mutex
	replicas []*replica
	nextID   int
	wg       sync.WaitGroup
}

type replica struct {
	id       int
	httpPort int
	grpcPort int
	sup      *supervisor.Replica
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewReplicaSet returns an empty set; onChange is called whenever a
// replica's status changes (so routes can be recomputed).
func NewReplicaSet(name string, tmpl ProcessTemplate, logDir string, log *slog.Logger, onChange func()) *ReplicaSet {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ReplicaSet{name: name, tmpl: tmpl, logDir: logDir, log: log, onChange: onChange}
}

// Scale starts or stops replicas until n run. Stopped replicas drain and
// exit in the background; Close waits for them.
func (s *ReplicaSet) Scale(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.replicas) < n {
		r, err := s.start()
		if err != nil {
			return err
		}
		s.replicas = append(s.replicas, r)
	}
	for len(s.replicas) > n {
		r := s.replicas[len(s.replicas)-1]
		s.replicas = s.replicas[:len(s.replicas)-1]
		r.cancel()
	}
	return nil
}

func (s *ReplicaSet) start() (*replica, error) {
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	gp, err := freePort()
	if err != nil {
		return nil, err
	}
	id := s.nextID
	s.nextID++
	cfg := s.tmpl(hp, gp)
	cfg.Name = fmt.Sprintf("%s-%d", s.name, id)
	if s.logDir != "" {
		cfg.LogFile = filepath.Join(s.logDir, cfg.Name+".log")
	}
	if s.pidDir != "" {
		cfg.PIDFile = filepath.Join(s.pidDir, fmt.Sprintf("%s-%d.pid", cfg.Name, hp)) // ports are unique while it runs
	}
	cfg.Logger = s.log
	cfg.OnChange = func(supervisor.Status) {
		if s.onChange != nil {
			s.onChange()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{id: id, httpPort: hp, grpcPort: gp, sup: supervisor.New(cfg), cancel: cancel, done: make(chan struct{})}
	s.wg.Add(1)
	go func() { // owned by the set: Close cancels and waits
		defer s.wg.Done()
		defer close(r.done)
		if err := r.sup.Run(ctx); err != nil {
			s.log.Error("replica failed", "replica", cfg.Name, "err", err)
		}
		if s.onChange != nil {
			s.onChange()
		}
	}()
	return r, nil
}

// Backends lists the HTTP addresses of ready replicas.
func (s *ReplicaSet) Backends() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.replicas {
		if r.sup.Status().Phase == supervisor.Ready {
			out = append(out, "127.0.0.1:"+strconv.Itoa(r.httpPort))
		}
	}
	return out
}

// GRPCBackends lists the gRPC addresses of ready replicas.
func (s *ReplicaSet) GRPCBackends() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.replicas {
		if r.sup.Status().Phase == supervisor.Ready {
			out = append(out, "127.0.0.1:"+strconv.Itoa(r.grpcPort))
		}
	}
	return out
}

// ReplicaStatus is one replica as the API reports it.
type ReplicaStatus struct {
	supervisor.Status
	HTTPPort int `json:"httpPort"`
	GRPCPort int `json:"grpcPort"`
	// InProcess: the replica runs inside ferry up's process (PID is
	// ferry up's), and the ingress calls it without a hop.
	InProcess bool `json:"inProcess,omitempty"`
}

// Status lists the running replicas.
func (s *ReplicaSet) Status() []ReplicaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ReplicaStatus, len(s.replicas))
	for i, r := range s.replicas {
		out[i] = ReplicaStatus{Status: r.sup.Status(), HTTPPort: r.httpPort, GRPCPort: r.grpcPort}
	}
	return out
}

// Logs returns the last n log lines of each replica, by replica name.
func (s *ReplicaSet) Logs(n int) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, r := range s.replicas {
		out[r.sup.Status().Name] = r.sup.Logs(n)
	}
	return out
}

// Close stops every replica and waits for them to exit.
func (s *ReplicaSet) Close() {
	_ = s.Scale(0)
	s.wg.Wait()
}

// freePort picks a replica's port (ports.go says why not port 0). Another
// listener could still take it before the replica binds; the supervisor
// then restarts the replica, which is rare.
func freePort() (int, error) { return replicaPorts().port() }
