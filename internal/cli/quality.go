package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/ferryserve/ferry/internal/quality"
	"github.com/ferryserve/ferry/internal/reqlog"
)

// qualityOptions are ferry serve's model quality flags: where predictions
// are journaled for ground-truth feedback, and how long they wait for it.
type qualityOptions struct {
	dir            string
	horizon        time.Duration
	window         int
	maxPredictions int
	revision       string
	tasks          []string
	maxBody        int64
	slots          bool
	peers          []string
	peerTimeout    time.Duration

	monitor *quality.Monitor
}

func (o *qualityOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.dir, "quality-dir", "", "journal answered predictions here and serve :feedback and /v2/models/NAME/quality (empty: quality monitoring off)")
	f.DurationVar(&o.horizon, "quality-horizon", quality.DefaultHorizon, "with --quality-dir: how long a prediction waits for its feedback; later feedback is counted as expired")
	f.IntVar(&o.window, "quality-window", quality.DefaultWindow, "with --quality-dir: labelled rows each model revision's metrics cover (the last N)")
	f.IntVar(&o.maxPredictions, "quality-max-predictions", quality.DefaultMaxPredictions, "with --quality-dir: most predictions remembered; more are not journaled (and counted)")
	f.StringVar(&o.revision, "quality-revision", "", "with --quality-dir: revision label of the predictions (default: the V2 model_version, else \"default\")")
	f.StringArrayVar(&o.tasks, "quality-task", nil, "with --quality-dir: MODEL=classification|regression where a model's outputs do not say (whole numbers are read as class labels); repeatable")
	f.BoolVar(&o.slots, "quality-replica-slots", false, "with --quality-dir: the directory is shared by the replicas of one revision; each journals in the first free DIR/replica-N (ferry up sets this)")
	f.Int64Var(&o.maxBody, "quality-max-feedback-bytes", 8<<20, "with --quality-dir: largest feedback body; larger gets 413")
	f.StringSliceVar(&o.peers, "quality-peers", nil, "with --quality-dir: the other replicas, HOST:PORT each (comma-separated, repeatable); a host name stands for all its addresses (a Kubernetes headless Service: every ready pod), looked up again every 5s. Feedback for ids this replica does not know is forwarded to them, and each record answered with the best outcome any replica gave")
	f.DurationVar(&o.peerTimeout, "quality-peer-timeout", quality.DefaultPeerTimeout, "with --quality-peers: bound on forwarding one feedback request to the peers, lookups included; a record whose replica did not answer in time is reported unknown with the reason")
}

// install opens the journal and appends the quality middleware and gRPC
// interceptor. It must come before the request logger's, so that both
// name a request by one id. With a request logger (nil: none), joined
// feedback is also logged as CloudEvents. self is this replica: its HTTP
// port and name, for --quality-peers.
func (o *qualityOptions) install(mw []func(http.Handler) http.Handler, ics []grpc.UnaryServerInterceptor, reqLogger *reqlog.Logger, self quality.PeerConfig, log *slog.Logger) ([]func(http.Handler) http.Handler, []grpc.UnaryServerInterceptor, error) {
	if o.dir == "" {
		if len(o.peers) > 0 {
			return nil, nil, fmt.Errorf("--quality-peers needs --quality-dir")
		}
		return mw, ics, nil
	}
	var peers *quality.Peers
	if len(o.peers) > 0 {
		if o.peerTimeout <= 0 {
			return nil, nil, fmt.Errorf("--quality-peer-timeout must be positive")
		}
		self.Addrs, self.Timeout, self.Logger = o.peers, o.peerTimeout, log
		var err error
		if peers, err = quality.NewPeers(self); err != nil {
			return nil, nil, fmt.Errorf("--quality-peers: %w", err)
		}
	}
	tasks := map[string]quality.Task{}
	for _, t := range o.tasks {
		name, task, ok := strings.Cut(t, "=")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("--quality-task %q: want MODEL=classification or MODEL=regression", t)
		}
		if err := quality.Task(task).Validate(); err != nil || task == "" {
			return nil, nil, fmt.Errorf("--quality-task %q: want MODEL=classification or MODEL=regression", t)
		}
		tasks[name] = quality.Task(task)
	}
	open := quality.Open
	if o.slots {
		open = quality.OpenSlot
	}
	m, err := open(quality.Config{
		Dir: o.dir, Horizon: o.horizon, Window: o.window, MaxPredictions: o.maxPredictions, Logger: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("--quality-dir: %w", err)
	}
	o.monitor = m
	n, size := m.Outstanding()
	log.Info("quality journal open", "dir", m.Dir(), "predictions", n, "bytes", size, "horizon", o.horizon, "peers", o.peers)
	hcfg := quality.HandlerConfig{Monitor: m, Revision: o.revision, Tasks: tasks, MaxBodyBytes: o.maxBody, Peers: peers, Logger: log}
	if reqLogger != nil {
		hcfg.Events = quality.LoggerEvents(reqLogger)
	}
	h := quality.NewHandler(hcfg)
	return append(mw, h.Middleware), append(ics, h.UnaryInterceptor), nil
}

// run expires and compacts the journal until ctx ends, then closes it;
// without --quality-dir it returns at once.
func (o *qualityOptions) run(ctx context.Context) error {
	if o.monitor == nil {
		return nil
	}
	return o.monitor.Run(ctx)
}
