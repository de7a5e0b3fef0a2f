package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ferryserve/ferry/internal/batcher"
	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/server"
)

type agentOptions struct {
	port          int
	componentHost string
	componentPort int
	reqlog        reqlogOptions
	enableBatcher bool
	maxBatchSize  int
	maxLatency    time.Duration
	enablePuller  bool
	storage       storageOptions
	configDir     string
	modelDir      string
	logLevel      string
	logFormat     string
	config        string
}

func newAgentCmd() *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent --component-port 8080 [--log-url URL] [--enable-puller]",
		Short: "Run the sidecar agent: request logger, batcher and model puller in front of any model server",
		Long: `Run the sidecar agent in front of a model server (Ferry's, TorchServe, Triton,
MLServer, …), as KServe's agent does: it reverse-proxies --port to
--component-port, logs requests and responses as CloudEvents (--log-url),
merges concurrent requests into batched upstream calls (--enable-batcher), and
with --enable-puller watches --config-dir/models.json (KServe's TrainedModel
format), pulls models into --model-dir/<name> and asks the server to load or
unload them through the V2 repository API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runAgent(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 9081, "port the agent listens on")
	f.StringVar(&o.componentHost, "component-host", "127.0.0.1", "host of the model server")
	f.IntVar(&o.componentPort, "component-port", 8080, "port of the model server")
	o.reqlog.addFlags(f)
	f.BoolVar(&o.enableBatcher, "enable-batcher", false, "merge V1 :predict (rows of numbers) and V2 /infer JSON requests per model into batched upstream calls")
	f.IntVar(&o.maxBatchSize, "max-batchsize", 32, "with --enable-batcher: most rows in one upstream call")
	f.DurationVar(&o.maxLatency, "max-latency", 5*time.Millisecond, "with --enable-batcher: longest a request waits for others while the upstream is busy")
	o.storage.addFlags(f)
	f.BoolVar(&o.enablePuller, "enable-puller", false, "watch --config-dir/models.json and load/unload models on the server")
	f.StringVar(&o.configDir, "config-dir", "/mnt/configs", "with --enable-puller: directory of models.json")
	f.StringVar(&o.modelDir, "model-dir", "/mnt/models", "with --enable-puller: where pulled models are placed")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

func runAgent(ctx context.Context, o *agentOptions, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	upstream := &url.URL{Scheme: "http", Host: net.JoinHostPort(o.componentHost, strconv.Itoa(o.componentPort))}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	var handler http.Handler = proxy
	if o.enableBatcher {
		if o.maxBatchSize < 1 || o.maxLatency <= 0 {
			return errors.New("--max-batchsize must be >= 1 and --max-latency > 0")
		}
		bp := batcher.NewProxy(upstream.String(), proxy, batcher.Config{MaxBatchSize: o.maxBatchSize, MaxLatency: o.maxLatency, Logger: log})
		defer bp.Close()
		handler = bp
	}
	g, gctx := errgroup.WithContext(ctx)
	// The logger stops only after the HTTP server has drained (see below).
	loggerCtx, stopLogger := context.WithCancel(context.Background())
	defer stopLogger()
	if o.reqlog.url != "" {
		l, err := o.reqlog.newRequestLogger(log, o.port)
		if err != nil {
			return err
		}
		handler = l.Middleware(handler)
		g.Go(func() error { return l.Run(loggerCtx) })
	}
	if o.enablePuller {
		store, err := newStorage(o.storage, log, nil)
		if err != nil {
			return err
		}
		p, err := puller.New(puller.Config{
			ConfigPath: filepath.Join(o.configDir, "models.json"),
			Fetcher:    store,
			Repository: &remoteRepository{base: upstream.String(), modelDir: o.modelDir, log: log, dirs: map[string]string{}},
			StateDir:   filepath.Join(o.modelDir, ".ferry-puller"),
			Logger:     log,
		})
		if err != nil {
			return err
		}
		handler = pullerStatus(p)(handler)
		g.Go(func() error { return p.Run(gctx) })
	}
	srv := &http.Server{Addr: ":" + strconv.Itoa(o.port), Handler: server.BodyRate{}.Wrap(handler), ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		defer stopLogger()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	log.Info("ferry agent", "port", o.port, "upstream", upstream.String(), "logger", o.reqlog.url != "", "batcher", o.enableBatcher, "puller", o.enablePuller)
	return g.Wait()
}

// remoteRepository drives a model server's V2 repository API for the
// puller: models are linked into modelDir/<name>, then loaded by name.
type remoteRepository struct {
	base     string
	modelDir string
	log      *slog.Logger
	dirs     map[string]string // only touched by the puller, one op per model at a time
}

func (r *remoteRepository) Add(src repository.Source) { r.dirs[src.Name] = src.Dir }

func (r *remoteRepository) Load(ctx context.Context, name string) error {
	dst := filepath.Join(r.modelDir, name)
	if err := os.MkdirAll(r.modelDir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.Symlink(r.dirs[name], dst); err != nil {
		return fmt.Errorf("place model %s: %w", name, err)
	}
	return r.call(ctx, "/v2/repository/models/"+url.PathEscape(name)+"/load")
}

func (r *remoteRepository) Remove(ctx context.Context, name string) error {
	err := r.call(ctx, "/v2/repository/models/"+url.PathEscape(name)+"/unload")
	_ = os.Remove(filepath.Join(r.modelDir, name))
	return err
}

func (r *remoteRepository) call(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, nil)
	if err != nil {
		return err
	}
	if tok := os.Getenv("FERRY_REPOSITORY_API_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("model server: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("model server answered %s to %s", resp.Status, path)
	}
	return nil
}
