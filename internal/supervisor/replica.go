package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Phase is a replica's lifecycle phase.
type Phase string

// The phases.
const (
	Starting Phase = "Starting" // process started, not (yet) ready
	Ready    Phase = "Ready"
	NotReady Phase = "NotReady" // was ready, readiness now failing
	Backoff  Phase = "Backoff"  // exited; waiting to restart
	Stopped  Phase = "Stopped"
)

// Config describes one replica.
type Config struct {
	Name    string // for logs, e.g. "iris-predictor-00002-0"
	Command string
	Args    []string
	Env     []string // KEY=VALUE, added to a minimal inherited environment
	Dir     string

	Readiness *Probe // nil = ready as soon as started
	Liveness  *Probe // nil = only process exit counts

	// PIDFile, if set, records the running process (see Reap) and is
	// removed when it exits.
	PIDFile string
	// RestartAfterNotReady, if positive, restarts a replica whose readiness
	// has failed (after it was once ready) for this long: a model server
	// whose only model was unloaded heals itself.
	RestartAfterNotReady time.Duration

	// LogFile, if set, receives the process's stdout and stderr (appended).
	LogFile string
	// LogLines is how many recent log lines Logs keeps (default 1000).
	LogLines int
	// StopGrace is how long the process has after SIGTERM (default 10s).
	StopGrace time.Duration
	// Backoff is the first restart delay, doubled up to MaxBackoff
	// (defaults 500ms and 30s). A process that stayed up for a minute
	// starts over at Backoff.
	Backoff, MaxBackoff time.Duration
	// OnChange is called (from the replica's goroutine) after every
	// status change.
	OnChange func(Status)
	Logger   *slog.Logger
}

// Status is a replica's observable state.
type Status struct {
	Name     string
	Phase    Phase
	PID      int
	Restarts int
	LastExit string
	Since    time.Time
}

// Replica supervises one process. Create with New, then Run.
type Replica struct {
	cfg    Config
	client *http.Client

	mu     sync.Mutex
	status Status
	logs   ring
}

// New returns a replica; nothing runs until Run.
func New(cfg Config) *Replica {
	if cfg.LogLines <= 0 {
		cfg.LogLines = 1000
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Replica{
		cfg:    cfg,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		status: Status{Name: cfg.Name, Phase: Starting, Since: time.Now()},
		logs:   ring{max: cfg.LogLines},
	}
}

// Status returns the current status.
func (r *Replica) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Logs returns up to n of the most recent log lines (n <= 0: all kept).
func (r *Replica) Logs(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.last(n)
}

func (r *Replica) set(f func(*Status)) {
	r.mu.Lock()
	old := r.status
	f(&r.status)
	if r.status.Phase != old.Phase {
		r.status.Since = time.Now()
	}
	s := r.status
	r.mu.Unlock()
	if r.cfg.OnChange != nil && s != old {
		r.cfg.OnChange(s)
	}
}

// Run starts the process and keeps it running until ctx ends, then stops it
// (SIGTERM, then SIGKILL after StopGrace) and returns. It returns an error
// only if the command can never start (e.g. not found).
func (r *Replica) Run(ctx context.Context) error {
	defer r.set(func(s *Status) { s.Phase, s.PID = Stopped, 0 })
	backoff := r.cfg.Backoff
	for {
		start := time.Now()
		err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var startErr *startError
		if errors.As(err, &startErr) {
			r.set(func(s *Status) { s.Phase, s.LastExit = Backoff, err.Error() })
			r.cfg.Logger.Error("replica cannot start", "replica", r.cfg.Name, "err", err)
			return err
		}
		if time.Since(start) > time.Minute {
			backoff = r.cfg.Backoff
		}
		r.set(func(s *Status) { s.Phase, s.PID, s.LastExit = Backoff, 0, err.Error(); s.Restarts++ })
		r.cfg.Logger.Warn("replica exited; restarting", "replica", r.cfg.Name, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, r.cfg.MaxBackoff)
	}
}

type startError struct{ err error }

func (e *startError) Error() string { return "start: " + e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// runOnce runs the process until it exits, fails liveness, or ctx ends.
func (r *Replica) runOnce(ctx context.Context) error {
	cmd := exec.Command(r.cfg.Command, r.cfg.Args...)
	cmd.Env = append(baseEnv(), r.cfg.Env...)
	cmd.Dir = r.cfg.Dir
	cmd.SysProcAttr = procAttr()
	var logFile *os.File
	if r.cfg.LogFile != "" {
		f, err := os.OpenFile(r.cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return &startError{fmt.Errorf("log file: %w", err)}
		}
		logFile = f
		defer f.Close()
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return &startError{err}
	}
	r.set(func(s *Status) { s.Phase, s.PID = Starting, cmd.Process.Pid })
	if r.cfg.PIDFile != "" {
		if err := writePIDFile(r.cfg.PIDFile, cmd.Process.Pid); err != nil {
			r.cfg.Logger.Warn("cannot record replica pid", "replica", r.cfg.Name, "err", err)
		}
		defer os.Remove(r.cfg.PIDFile)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned: ends when the pipe closes after the process exits
		defer wg.Done()
		r.copyLogs(pr, logFile)
	}()
	exited := make(chan error, 1)
	go func() { // owned: ends when the process exits
		exited <- cmd.Wait()
		pw.Close()
	}()

	pctx, stopProbes := context.WithCancel(ctx)
	livenessFailed := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.probeLoop(pctx, cmd.Env, livenessFailed)
	}()

	var result error
	select {
	case err := <-exited:
		result = exitErr(err)
		stopProbes()
	case err := <-livenessFailed:
		stopProbes()
		r.cfg.Logger.Warn("replica unhealthy; killing it", "replica", r.cfg.Name, "err", err)
		result = err
		r.terminate(cmd, exited)
	case <-ctx.Done():
		stopProbes()
		result = ctx.Err()
		r.terminate(cmd, exited)
	}
	wg.Wait()
	return result
}

func exitErr(err error) error {
	if err == nil {
		return errors.New("exited with status 0")
	}
	return fmt.Errorf("exited: %w", err)
}

// terminate sends SIGTERM to the process group, then SIGKILL after the
// grace period, and waits for the exit.
func (r *Replica) terminate(cmd *exec.Cmd, exited <-chan error) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(r.cfg.StopGrace):
		r.cfg.Logger.Warn("replica did not stop in time; killing", "replica", r.cfg.Name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}

// probeLoop runs readiness and liveness until ctx ends.
func (r *Replica) probeLoop(ctx context.Context, env []string, livenessFailed chan<- error) {
	if r.cfg.Readiness == nil {
		r.set(func(s *Status) { s.Phase = Ready })
	}
	type state struct {
		p         Probe
		next      time.Time
		ok, fails int
	}
	var ready, live *state
	now := time.Now()
	if r.cfg.Readiness != nil {
		p := r.cfg.Readiness.withDefaults()
		ready = &state{p: p, next: now.Add(p.InitialDelay)}
	}
	if r.cfg.Liveness != nil {
		p := r.cfg.Liveness.withDefaults()
		live = &state{p: p, next: now.Add(p.InitialDelay)}
	}
	if ready == nil && live == nil {
		<-ctx.Done()
		return
	}
	// Probe readiness quickly until the first success so a replica is
	// routable as soon as it can serve, then at its period.
	const fastPeriod = 10 * time.Millisecond
	becameReady := false
	var notReadySince time.Time
	for {
		wake := time.Time{}
		for _, s := range []*state{ready, live} {
			if s != nil && (wake.IsZero() || s.next.Before(wake)) {
				wake = s.next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(wake)):
		}
		now := time.Now()
		if ready != nil && !now.Before(ready.next) {
			err := ready.p.check(ctx, r.client, env)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				ready.ok, ready.fails = ready.ok+1, 0
				if ready.ok >= ready.p.SuccessThreshold {
					becameReady = true
					r.set(func(s *Status) { s.Phase = Ready })
				}
				notReadySince = time.Time{}
			} else {
				ready.ok, ready.fails = 0, ready.fails+1
				if becameReady && ready.fails >= ready.p.FailureThreshold {
					r.set(func(s *Status) { s.Phase = NotReady })
					if notReadySince.IsZero() {
						notReadySince = now
					}
					if d := r.cfg.RestartAfterNotReady; d > 0 && now.Sub(notReadySince) >= d {
						livenessFailed <- fmt.Errorf("readiness failed for %v: %w", now.Sub(notReadySince).Round(time.Second), err)
						return
					}
				}
			}
			period := ready.p.Period
			if !becameReady {
				period = min(period, fastPeriod)
			}
			ready.next = now.Add(period)
		}
		if live != nil && !now.Before(live.next) {
			err := live.p.check(ctx, r.client, env)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				live.fails = 0
			} else if live.fails++; live.fails >= live.p.FailureThreshold {
				livenessFailed <- fmt.Errorf("liveness probe failed: %w", err)
				return
			}
			live.next = now.Add(live.p.Period)
		}
	}
}

func (r *Replica) copyLogs(rd io.Reader, file *os.File) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		r.mu.Lock()
		r.logs.add(line)
		r.mu.Unlock()
		if file != nil {
			_, _ = file.WriteString(line + "\n")
		}
	}
	// Drain anything after a too-long line so the child never blocks.
	_, _ = io.Copy(io.Discard, rd)
}

// baseEnv is what a replica inherits: enough to find programs and a home,
// not the supervisor's secrets.
func baseEnv() []string {
	var out []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// ring keeps the last max lines.
type ring struct {
	max   int
	lines []string
	start int
}

func (g *ring) add(s string) {
	if len(g.lines) < g.max {
		g.lines = append(g.lines, s)
		return
	}
	g.lines[g.start] = s
	g.start = (g.start + 1) % g.max
}

func (g *ring) last(n int) []string {
	all := append(append([]string(nil), g.lines[g.start:]...), g.lines[:g.start]...)
	if n > 0 && n < len(all) {
		return all[len(all)-n:]
	}
	return all
}
