package controlplane

import (
	"context"
	"math"
	"sync"
	"time"
)

// ScaleSpec is one revision's autoscaling settings, from its component's
// minReplicas, maxReplicas, scaleMetric and scaleTarget (or the Knative
// autoscaling annotations).
type ScaleSpec struct {
	Min, Max int     // Max 0 = unlimited
	Metric   string  // concurrency (default) or rps
	Target   float64 // per replica; default 100 for concurrency, 200 for rps
}

// AutoscalerConfig holds the windows, as in Knative's KPA.
type AutoscalerConfig struct {
	Tick             time.Duration // sampling period (default 1s)
	StableWindow     time.Duration // default 60s
	PanicWindow      time.Duration // default 6s
	PanicThreshold   float64       // default 2 (× current capacity)
	ScaleToZeroAfter time.Duration // idle time before going to zero (default 30s beyond the stable window)
	// ScaleDownDelay holds a lower replica count back until it has been
	// wanted for this long (default 0, as Knative's scale-down-delay).
	ScaleDownDelay time.Duration
	// MaxLocalReplicas caps "unlimited" maxReplicas on one machine (default 8).
	MaxLocalReplicas int
}

// Stat reads a revision's counters: requests in flight (including those
// held by the activator) and requests received so far.
type Stat func(namespace, revision string) (inFlight int64, requests uint64)

// Autoscaler computes desired replicas per revision from the router's
// counters: a stable-window average, a panic window that scales up fast and
// never down, and scale to zero after an idle period when Min is 0.
type Autoscaler struct {
	cfg        AutoscalerConfig
	stat       Stat
	onNew      func()               // called when a desired count changes (without OnRevisionChange)
	onRevision func(ns, rev string) // called per revision whose desired count changed

	mu   sync.Mutex
	revs map[string]*revScaler // "ns/revision"
}

type sample struct {
	at time.Time
	v  float64
}

type revScaler struct {
	ns, rev    string
	spec       ScaleSpec
	samples    []sample
	lastReqs   uint64
	lastAt     time.Time
	desired    int
	panicUntil time.Time
	lastActive time.Time
	panicking  bool
	// downSince is when the autoscaler first wanted fewer replicas than
	// desired (zero while it does not).
	downSince time.Time
}

// NewAutoscaler returns an autoscaler; Run samples until ctx ends.
func NewAutoscaler(cfg AutoscalerConfig, stat Stat, onChange func()) *Autoscaler {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.StableWindow <= 0 {
		cfg.StableWindow = 60 * time.Second
	}
	if cfg.PanicWindow <= 0 {
		cfg.PanicWindow = 6 * time.Second
	}
	if cfg.PanicThreshold <= 0 {
		cfg.PanicThreshold = 2
	}
	if cfg.ScaleToZeroAfter <= 0 {
		cfg.ScaleToZeroAfter = 30 * time.Second
	}
	if cfg.MaxLocalReplicas <= 0 {
		cfg.MaxLocalReplicas = 8
	}
	return &Autoscaler{cfg: cfg, stat: stat, onNew: onChange, revs: map[string]*revScaler{}}
}

// Desired registers (or updates) a revision and returns how many replicas
// it should run now. A new revision starts at max(Min, 1), as Knative's
// initial scale.
func (a *Autoscaler) Desired(ns, rev string, spec ScaleSpec) int {
	return a.DesiredFrom(ns, rev, spec, max(spec.Min, 1))
}

// DesiredFrom is Desired with the initial count of a revision the
// autoscaler has not seen yet: a revision that ran before a restart of
// ferry up starts from zero when its minimum is zero, so services scaled
// to zero stay there and wake on their first request.
func (a *Autoscaler) DesiredFrom(ns, rev string, spec ScaleSpec, initial int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := ns + "/" + rev
	s, ok := a.revs[k]
	if !ok {
		now := time.Now()
		s = &revScaler{ns: ns, rev: rev, desired: max(spec.Min, initial), lastActive: now, lastAt: now}
		_, s.lastReqs = a.stat(ns, rev)
		a.revs[k] = s
	}
	s.spec = spec
	s.desired = a.clamp(s, s.desired)
	return s.desired
}

// Forget drops a revision that no longer runs.
func (a *Autoscaler) Forget(ns, rev string) {
	a.mu.Lock()
	delete(a.revs, ns+"/"+rev)
	a.mu.Unlock()
}

// Activate is the activator's call for a revision at zero: it asks for one
// replica at once.
func (a *Autoscaler) Activate(ns, rev string) {
	a.mu.Lock()
	s, ok := a.revs[ns+"/"+rev]
	changed := false
	if ok {
		s.lastActive = time.Now()
		if s.desired == 0 {
			s.desired, changed = 1, true
		}
	}
	a.mu.Unlock()
	if changed {
		a.notify([]*revScaler{s})
	}
}

// State reports a revision's desired replicas and whether it is in panic
// mode (for status and metrics).
func (a *Autoscaler) State(ns, rev string) (desired int, panicking bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.revs[ns+"/"+rev]; ok {
		return s.desired, s.panicking
	}
	return 0, false
}

// Run samples every Tick until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			changed := a.step(now)
			a.notify(changed)
		}
	}
}

// OnRevisionChange makes the autoscaler report each revision whose
// desired count changed (ns, revision) instead of calling the callback
// given to NewAutoscaler, so only that revision's service is reconciled.
func (a *Autoscaler) OnRevisionChange(f func(ns, rev string)) {
	a.mu.Lock()
	a.onRevision = f
	a.mu.Unlock()
}

func (a *Autoscaler) notify(changed []*revScaler) {
	if len(changed) == 0 {
		return
	}
	a.mu.Lock()
	f := a.onRevision
	a.mu.Unlock()
	if f == nil {
		if a.onNew != nil {
			a.onNew()
		}
		return
	}
	for _, s := range changed {
		f(s.ns, s.rev)
	}
}

// step takes one sample of every revision and recomputes desired counts;
// it returns the revisions whose count changed.
func (a *Autoscaler) step(now time.Time) []*revScaler {
	a.mu.Lock()
	defer a.mu.Unlock()
	var changed []*revScaler
	for _, s := range a.revs {
		inFlight, reqs := a.stat(s.ns, s.rev)
		v := float64(inFlight)
		if s.spec.Metric == "rps" {
			if dt := now.Sub(s.lastAt).Seconds(); dt > 0 {
				v = float64(reqs-s.lastReqs) / dt
			}
		}
		if inFlight > 0 || reqs != s.lastReqs {
			s.lastActive = now
		}
		s.lastReqs, s.lastAt = reqs, now
		s.samples = append(s.samples, sample{now, v})
		cut := 0
		for cut < len(s.samples) && now.Sub(s.samples[cut].at) > a.cfg.StableWindow {
			cut++
		}
		s.samples = s.samples[cut:]
		d := a.decide(s, now)
		if d < s.desired && a.cfg.ScaleDownDelay > 0 {
			if s.downSince.IsZero() {
				s.downSince = now
			}
			if now.Sub(s.downSince) < a.cfg.ScaleDownDelay {
				continue // hold the higher count a while longer
			}
		}
		if d >= s.desired {
			s.downSince = time.Time{}
		}
		if d != s.desired {
			s.desired = d
			changed = append(changed, s)
			s.downSince = time.Time{}
		}
	}
	return changed
}

func (a *Autoscaler) target(s *revScaler) float64 {
	if s.spec.Target > 0 {
		return s.spec.Target
	}
	if s.spec.Metric == "rps" {
		return 200
	}
	return 100
}

func (a *Autoscaler) decide(s *revScaler, now time.Time) int {
	var stableSum, panicSum float64
	var stableN, panicN int
	for _, x := range s.samples {
		stableSum += x.v
		stableN++
		if now.Sub(x.at) <= a.cfg.PanicWindow {
			panicSum += x.v
			panicN++
		}
	}
	target := a.target(s)
	stable := int(math.Ceil(stableSum / float64(max(stableN, 1)) / target))
	panicWant := int(math.Ceil(panicSum / float64(max(panicN, 1)) / target))
	cur := max(s.desired, 1)
	want := stable
	if float64(panicWant) >= a.cfg.PanicThreshold*float64(cur) && panicWant > s.desired {
		s.panicUntil = now.Add(a.cfg.StableWindow)
	}
	s.panicking = now.Before(s.panicUntil)
	if s.panicking {
		want = max(panicWant, s.desired) // in panic, never scale down
	}
	if want == 0 {
		// Keep one replica until the revision has been idle long enough.
		if s.spec.Min > 0 || now.Sub(s.lastActive) < a.cfg.ScaleToZeroAfter {
			want = 1
		}
	}
	return a.clamp(s, want)
}

func (a *Autoscaler) clamp(s *revScaler, n int) int {
	hi := s.spec.Max
	if hi <= 0 || hi > a.cfg.MaxLocalReplicas {
		hi = a.cfg.MaxLocalReplicas
	}
	return min(max(n, s.spec.Min), max(hi, s.spec.Min))
}
