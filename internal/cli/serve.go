package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryserve/ferry/internal/batcher"
	"github.com/ferryserve/ferry/internal/controlplane"
	"github.com/ferryserve/ferry/internal/node"
	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/quality"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/reqlog"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/storage"
)

type serveOptions struct {
	security        serveSecurityOptions
	replicaID       string
	modelDir        string
	modelURI        string
	storage         storageOptions
	modelsConfig    string
	multiModel      bool
	pullerStateDir  string
	modelName       string
	modelFormat     string
	host            string
	httpPort        int
	httpSocket      string
	grpcPort        int
	maxBodyBytes    int64
	httpEngine      string
	grpcTransport   string
	budgets         budgetOptions
	requestTimeout  time.Duration
	shutdownTimeout time.Duration
	loadParallelism int
	enableBatcher   bool
	maxBatchSize    int
	maxLatency      time.Duration
	memoryLimit     string
	evictLRU        string
	reqlog          reqlogOptions
	explain         explainOptions
	quality         qualityOptions
	onnxEngine      string
	onnxLib         string
	logLevel        string
	logFormat       string
	config          string
	// embedded, if set, runs the server inside another process (ferry
	// up's in-process replicas, serveInProcess): it is given the server's
	// handler and readiness once the server is built.
	embedded func(controlplane.EmbeddedServer)
}

func newServeCmd() *cobra.Command { return serveCmd(&serveOptions{}) }

// serveCmd is `ferry serve` over o.
func serveCmd(o *serveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve --model-dir DIR",
		Short: "Serve the models in a directory over V1/V2 REST and V2 gRPC",
		Long: `Serve the models in a directory over KServe's V1 and V2 REST protocols and V2 gRPC.

DIR holding a model file directly is served as one model named --model-name
(default: DIR's base name). Otherwise every subdirectory of DIR is a model
named after it. Numeric subdirectories of a model directory are its versions;
the highest ready one is the default.

Every flag can also be set with an environment variable FERRY_<FLAG> (for
example FERRY_HTTP_PORT=9000) or a key in the --config YAML file (for example
"http-port: 9000"). The command line wins over the environment, which wins
over the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// An embedded server takes its flags from the command line
			// alone, as a process replica whose environment ferry up sets.
			if o.embedded == nil {
				if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
					return err
				}
			}
			return runServe(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.modelDir, "model-dir", "", "directory holding the model(s) to serve (this or --models-config is required)")
	f.StringVar(&o.modelURI, "model-uri", "", "pull the model(s) from a storage URI (s3://, gs://, az://, https://, pvc://, file://) into the local cache and serve them, as --model-dir")
	o.storage.addFlags(f)
	f.BoolVar(&o.multiModel, "multi-model", false, "multi-model server: --model-dir may start empty, and POST /v2/repository/models/NAME/load loads --model-dir/NAME")
	f.StringVar(&o.modelsConfig, "models-config", "", "watch this KServe models config (TrainedModel JSON list) and pull, load and unload its models as it changes")
	f.StringVar(&o.pullerStateDir, "puller-state-dir", "", "with --models-config: where pull markers live, so a restart does not pull again (default: next to the config)")
	f.StringVar(&o.replicaID, "replica-id", "", "identity sent in every HTTP answer's Ferry-Replica-Id header (ferry up sets it to probe its own replica)")
	_ = f.MarkHidden("replica-id")
	f.StringVar(&o.httpSocket, "http-socket", "", "also serve HTTP on this Unix socket (ferry up's ingress reaches its replicas there)")
	_ = f.MarkHidden("http-socket")
	f.StringVar(&o.modelName, "model-name", "", "name of the model when --model-dir holds a single model (default: the directory's base name)")
	f.StringVar(&o.modelFormat, "model-format", "", "force a model format instead of detecting it from the files: "+joinNames())
	f.StringVar(&o.host, "host", "0.0.0.0", "address to bind the HTTP and gRPC listeners to")
	f.IntVar(&o.httpPort, "http-port", 8080, "HTTP port for V1/V2 REST and /metrics")
	f.IntVar(&o.grpcPort, "grpc-port", 8081, "gRPC port for V2 gRPC")
	f.StringVar(&o.grpcTransport, "grpc-transport", server.DefaultGRPCTransport, "gRPC server: \"ferry\" (Ferry's own HTTP/2 transport) or \"grpc-go\" (grpc-go's server)")
	f.StringVar(&o.httpEngine, "http-engine", server.DefaultHTTPEngine, "HTTP/1.1 server: \"fast\" (Ferry's own; hands HTTP/1.0, h2c and upgrades to net/http) or \"std\" (net/http)")
	f.Int64Var(&o.maxBodyBytes, "max-body-bytes", 100<<20, "largest request body (and gRPC message) accepted; larger requests get 413")
	f.Int64Var(&o.budgets.requestElements, "max-request-elements", protocol.DefaultMaxElements, "most tensor elements one inference request may hold, over all its inputs; more gets 413")
	f.Int64Var(&o.budgets.requestBytes, "max-request-decoded-bytes", protocol.DefaultMaxDecodedBytes, "most memory one request's decoded input tensors may take (a BYTES element counts its length + 24); more gets 413")
	f.Int64Var(&o.budgets.inferenceBytes, "max-inference-bytes", onnx.DefaultMaxInferenceBytes, "most memory the ONNX Go engine's intermediate tensors may hold at once in one inference; more gets 413 (-1 = no bound)")
	f.Int64Var(&o.budgets.decodeBytes, "max-model-decode-bytes", pickle.DefaultBudget, "most memory decoding one scikit-learn pickle/joblib file may commit; --memory-limit lowers it to what the limit leaves free")
	f.DurationVar(&o.requestTimeout, "request-timeout", 0, "bound on each inference request (e.g. 5s); 0 = no bound")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long to wait for in-flight requests")
	f.IntVar(&o.loadParallelism, "load-parallelism", 4, "models loaded concurrently at start")
	f.BoolVar(&o.enableBatcher, "enable-batcher", false, "merge concurrent requests to a model into batched calls (V1, V2 REST and gRPC)")
	f.IntVar(&o.maxBatchSize, "max-batchsize", 32, "with --enable-batcher: most rows in one batched call")
	f.DurationVar(&o.maxLatency, "max-latency", 5*time.Millisecond, "with --enable-batcher: longest a request waits for others to join its batch")
	f.StringVar(&o.memoryLimit, "memory-limit", "", "bound on the summed measured memory of loaded models, e.g. 4Gi (empty = none)")
	f.StringVar(&o.evictLRU, "evict", "", "with --memory-limit: \"lru\" unloads least recently used idle models to make room; empty refuses the load")
	o.reqlog.addFlags(f)
	o.explain.addFlags(f)
	o.quality.addFlags(f)
	o.security.addFlags(f)
	f.StringVar(&o.onnxEngine, "onnx-engine", "auto", "ONNX engine: go (built-in interpreter), native (ONNX Runtime; needs a build with -tags onnxruntime), or auto")
	f.StringVar(&o.onnxLib, "onnxruntime-lib", "", "path of libonnxruntime.so for the native ONNX engine (default "+onnx.DefaultLibraryPath+")")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "auto", "auto (text on a terminal, JSON otherwise), json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

func runServe(ctx context.Context, o *serveOptions, cmd *cobra.Command) error {
	if o.modelDir == "" && o.modelURI == "" && o.modelsConfig == "" && !o.explain.standalone() {
		return errors.New("--model-dir is required (a directory with a model file, or one subdirectory per model), or --model-uri, or --models-config for a multi-model server (or --explainer-type with --predictor-host for an explainer alone)")
	}
	if o.modelDir != "" && o.modelURI != "" {
		return errors.New("give --model-dir or --model-uri, not both")
	}
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	store, err := newStorage(o.storage, log, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	// With --model-uri the listeners come up first and the pull runs with
	// the loads, so liveness answers during a long download and readiness
	// covers it. A multi-model server discovers by directory: it pulls first.
	deferredPull := o.modelURI != "" && !o.multiModel
	if o.modelURI != "" {
		if o.modelName == "" {
			o.modelName = uriBaseName(o.modelURI)
		}
		if !deferredPull {
			if o.modelDir, err = store.Pull(ctx, o.modelURI); err != nil {
				return err
			}
		}
	}
	onnxOpts := onnx.Options{Engine: o.onnxEngine, LibraryPath: o.onnxLib, MaxInferenceBytes: o.budgets.inferenceBytes}
	if err := onnxOpts.Validate(); err != nil {
		return fmt.Errorf("--onnx-engine/--onnxruntime-lib: %w", err)
	}
	reg := runtime.NewRegistry(formatsWith(onnxOpts)...)
	reg.Logger = log
	if o.modelFormat != "" {
		if _, ok := reg.Lookup(o.modelFormat); !ok {
			return fmt.Errorf("--model-format %q is not one of: %s", o.modelFormat, joinNames())
		}
	}
	var sources []repository.Source
	if deferredPull {
		// A placeholder keeps readiness false until the pull and load end.
		sources = []repository.Source{{Name: o.modelName, Format: o.modelFormat}}
	}
	if o.modelDir != "" {
		if sources, err = repository.Discover(o.modelDir, o.modelName, o.modelFormat, reg.HasModelFile); err != nil {
			if !o.multiModel || !isDir(o.modelDir) {
				return err
			}
			sources = nil // an empty multi-model server, waiting for loads
		}
	}
	memLimit, err := puller.ParseQuantity(o.memoryLimit)
	if err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	if o.evictLRU != "" && o.evictLRU != "lru" {
		return fmt.Errorf("--evict %q: the only policy is lru", o.evictLRU)
	}
	var loader repository.Loader = reg
	if o.enableBatcher {
		if o.maxBatchSize < 1 || o.maxLatency <= 0 {
			return errors.New("--max-batchsize must be >= 1 and --max-latency > 0")
		}
		loader = batchingLoader{reg, batcher.Config{MaxBatchSize: o.maxBatchSize, MaxLatency: o.maxLatency, Logger: log}}
	}
	metrics := server.NewMetrics(nil)
	rcfg := repository.Config{
		Loader: loader, Logger: log, OnLoad: metrics.ObserveLoad,
		MemoryLimit: memLimit, EvictLRU: o.evictLRU == "lru", DecodeBudget: o.budgets.decodeBytes,
	}
	if o.multiModel && o.modelDir != "" {
		rcfg.Discover = func(name string) (repository.Source, bool) {
			dir := filepath.Join(o.modelDir, name)
			if filepath.Base(dir) != name || !isDir(dir) {
				return repository.Source{}, false
			}
			return repository.Source{Name: name, Dir: dir, Format: o.modelFormat}, true
		}
	}
	repo := repository.New(rcfg)
	metrics.WatchRepository(repo)
	for _, s := range sources {
		repo.Add(s)
	}
	scfg, reqLogger, pl, err := o.middleware(ctx, repo, store, metrics, log)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		RepositoryAPI:    scfg.RepositoryAPI,
		BodyRate:         scfg.BodyRate,
		HTTPMiddleware:   scfg.HTTPMiddleware,
		GRPCInterceptors: scfg.GRPCInterceptors,
		RequestLimits:    o.budgets.requestLimits(),
		HTTPAddr:         net.JoinHostPort(o.host, strconv.Itoa(o.httpPort)),
		GRPCAddr:         net.JoinHostPort(o.host, strconv.Itoa(o.grpcPort)),
		Repository:       repo,
		Metrics:          metrics,
		ServerVersion:    Version,
		MaxBodyBytes:     o.maxBodyBytes,
		RequestTimeout:   o.requestTimeout,
		ShutdownTimeout:  o.shutdownTimeout,
		Logger:           log,
		ReplicaID:        o.replicaID,
		HTTPEngine:       o.httpEngine,
		GRPCTransport:    o.grpcTransport,
		HTTPSocket:       o.httpSocket,
	})
	if err != nil {
		return err
	}
	if o.embedded != nil {
		o.embedded(controlplane.EmbeddedServer{Handler: srv.Handler(), Ready: repo.Ready})
	}
	ncfg := node.Config{
		Embedded: o.embedded != nil,
		Server:   srv, Models: repo, LoadParallelism: o.loadParallelism, Logger: log,
		AfterLoad: o.explain.checkLoaded(repo, log),
		Drained:   []node.Runner{node.RunFunc(o.quality.run)}, // closes the journal after the drain
	}
	if reqLogger != nil {
		ncfg.Drained = append(ncfg.Drained, reqLogger)
	}
	if pl != nil {
		ncfg.Background = append(ncfg.Background, pl)
	}
	if deferredPull {
		// A failed pull exits: the supervisor retries with backoff and shows the reason.
		ncfg.Pull = func(ctx context.Context) error { return pullInto(ctx, repo, store, o, reg.HasModelFile) }
	}
	return node.Run(ctx, ncfg)
}

// middleware builds the server's middleware chain from the flags: request
// budgets, the quality journal, the request logger, the models-config
// puller's status, the explainer and the listeners' security. It returns
// the logger and the puller, which run beside the server.
func (o *serveOptions) middleware(ctx context.Context, repo *repository.Repository, store *storage.Puller, metrics *server.Metrics, log *slog.Logger) (scfg server.Config, reqLogger *reqlog.Logger, pl *puller.Puller, err error) {
	scfg.HTTPMiddleware, scfg.GRPCInterceptors = o.budgets.install(scfg.HTTPMiddleware, scfg.GRPCInterceptors)
	if o.reqlog.url != "" {
		if reqLogger, err = o.reqlog.newRequestLogger(log, o.httpPort); err != nil {
			return scfg, nil, nil, err
		}
	}
	if scfg.HTTPMiddleware, scfg.GRPCInterceptors, err = o.quality.install(scfg.HTTPMiddleware, scfg.GRPCInterceptors, reqLogger, quality.PeerConfig{Host: o.host, Port: o.httpPort, Name: o.replicaID}, log); err != nil {
		return scfg, nil, nil, err
	}
	if reqLogger != nil {
		scfg.HTTPMiddleware = append(scfg.HTTPMiddleware, reqLogger.Middleware)
		scfg.GRPCInterceptors = append(scfg.GRPCInterceptors, reqLogger.UnaryInterceptor)
		metrics.RegisterCounters("logger_events", "Request logger events", []string{"queued", "sent", "retried", "dropped", "spool_full"}, func() map[string]int64 {
			st := reqLogger.Stats()
			return map[string]int64{"queued": st.Queued, "sent": st.Sent, "retried": st.Retried, "dropped": st.Dropped, "spool_full": st.SpoolFull}
		})
	}
	if o.modelsConfig != "" {
		state := o.pullerStateDir
		if state == "" {
			state = o.modelsConfig + ".state"
		}
		if pl, err = puller.New(puller.Config{
			ConfigPath: o.modelsConfig, Fetcher: store, Repository: repo,
			StateDir: state, Logger: log,
		}); err != nil {
			return scfg, nil, nil, err
		}
		scfg.HTTPMiddleware = append(scfg.HTTPMiddleware, pullerStatus(pl))
	}
	explainMW, err := o.explain.middleware(ctx, repo, store, o.maxBodyBytes, o.requestTimeout, log)
	if err != nil {
		return scfg, nil, nil, err
	} else if explainMW != nil {
		scfg.HTTPMiddleware = append(scfg.HTTPMiddleware, explainMW)
	}
	if err := o.security.configure(&scfg, o.host, log); err != nil {
		return scfg, nil, nil, err
	}
	return scfg, reqLogger, pl, nil
}

// pullInto pulls --model-uri and registers what it holds in place of the
// placeholder named --model-name.
func pullInto(ctx context.Context, repo *repository.Repository, store modelPuller, o *serveOptions, hasModel repository.ModelFileDetector) error {
	dir, err := store.Pull(ctx, o.modelURI)
	if err != nil {
		return fmt.Errorf("pull --model-uri %s: %w", o.modelURI, err)
	}
	srcs, err := repository.Discover(dir, o.modelName, o.modelFormat, hasModel)
	if err != nil {
		return fmt.Errorf("model pulled from %s: %w", o.modelURI, err)
	}
	placeholderUsed := false
	for _, s := range srcs {
		repo.Add(s)
		placeholderUsed = placeholderUsed || s.Name == o.modelName
	}
	if !placeholderUsed {
		return repo.Remove(ctx, o.modelName)
	}
	return nil
}

// batchingLoader wraps every loaded model in a batcher.
type batchingLoader struct {
	next repository.Loader
	cfg  batcher.Config
}

func (l batchingLoader) Load(ctx context.Context, dir, format string) (runtime.Model, string, error) {
	m, f, err := l.next.Load(ctx, dir, format)
	if err != nil {
		return nil, f, err
	}
	return batcher.New(m, l.cfg), f, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// uriBaseName names a model after its URI: the last path segment
// ("s3://bucket/models/iris/" → "iris"), without an archive extension
// (".../iris.tar.gz" → "iris"), or the segment before a model file
// (".../iris/model.json" → "iris").
func uriBaseName(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if i := strings.Index(uri, "://"); i >= 0 {
		uri = uri[i+3:]
	}
	segs := strings.Split(strings.Trim(uri, "/"), "/")
	last := segs[len(segs)-1]
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".zip"} {
		if t, ok := strings.CutSuffix(last, ext); ok {
			return t
		}
	}
	if strings.Contains(last, ".") && len(segs) > 1 {
		return segs[len(segs)-2]
	}
	return last
}

// pullerStatus serves GET /v2/repository/puller: every model the models
// config names, with its phase (Pulling, Loading, Loaded, Failed) and the
// cause of a failure, including pulls that never reached the repository.
func pullerStatus(p *puller.Puller) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/v2/repository/puller" {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"models": p.States()})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// modelPuller is what pullInto needs from storage.
type modelPuller interface {
	Pull(ctx context.Context, uri string) (string, error)
}

// serveInProcess is ferry up's controlplane.ServeFunc: `ferry serve` with a
// process replica's flags, run in this process, its log (stdout and
// stderr) written to logw.
func serveInProcess(ctx context.Context, args []string, logw io.Writer, started func(controlplane.EmbeddedServer)) error {
	cmd := serveCmd(&serveOptions{embedded: started})
	cmd.SetArgs(args)
	cmd.SetOut(logw)
	cmd.SetErr(logw)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(ctx)
}
