package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/controlplane"
	"github.com/ferryserve/ferry/internal/memtrim"
	"github.com/ferryserve/ferry/internal/storage"
)

type upOptions struct {
	dataDir           string
	host              string
	httpPort          int
	grpcPort          int
	apiAddr           string
	domain            string
	files             []string
	storage           storageOptions
	activationTimeout time.Duration
	stableWindow      time.Duration
	panicWindow       time.Duration
	scaleToZeroAfter  time.Duration
	scaleDownDelay    time.Duration
	logLevel          string
	logFormat         string
	config            string
	api               apiSecurityOptions
	rollout           rolloutUpOptions
	storageConfig     string
	inProcess         bool
}

func newUpCmd() *cobra.Command {
	o := &upOptions{}
	cmd := &cobra.Command{
		Use:   "up [-f FILE|DIR]",
		Short: "Run the embedded control plane: InferenceServices from KServe YAML on this machine",
		Long: `Run the embedded control plane: apply the same InferenceService YAML you would
give KServe, and Ferry runs each component revision as supervised processes,
routes traffic through one ingress port by Host header or path, rolls out
canaries, and keeps its state under --data-dir so a restart resumes every
service.

Talk to it with ferry apply/get/describe/delete/logs/infer (--server, or
FERRY_SERVER, default http://127.0.0.1:8090).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runUp(cmd.Context(), o, cmd)
		},
	}
	home, _ := os.UserHomeDir()
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", filepath.Join(home, ".ferry"), "where the store, logs and spools live")
	f.StringVar(&o.host, "host", "0.0.0.0", "address of the ingress listener")
	f.IntVar(&o.httpPort, "http-port", 8080, "ingress HTTP port for every InferenceService")
	f.IntVar(&o.grpcPort, "grpc-port", 8081, "ingress gRPC port (V2 gRPC, routed by :authority or model name)")
	f.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:8090", "management API address (what ferry apply/get talk to)")
	f.StringVar(&o.domain, "domain", "example.com", "ingress domain: services answer at {name}.{namespace}.{domain}")
	f.StringSliceVarP(&o.files, "filename", "f", nil, "YAML file or directory to apply at start (repeatable)")
	f.DurationVar(&o.activationTimeout, "activation-timeout", 60*time.Second, "how long a request waits for a revision scaled to zero to start a replica (then 503 with Retry-After)")
	f.DurationVar(&o.stableWindow, "stable-window", 60*time.Second, "autoscaler: window whose average concurrency (or rps) sets the replica count")
	f.DurationVar(&o.panicWindow, "panic-window", 6*time.Second, "autoscaler: short window that scales up fast when load doubles")
	f.DurationVar(&o.scaleDownDelay, "scale-down-delay", 0, "autoscaler: keep a higher replica count until a lower one has been wanted this long")
	f.DurationVar(&o.scaleToZeroAfter, "scale-to-zero-after", 30*time.Second, "autoscaler: idle time before a minReplicas: 0 revision goes to zero")
	o.storage.addFlags(f)
	o.api.addFlags(f)
	f.StringVar(&o.storageConfig, api.StorageConfigFlag, "", "KServe storage-config (a Secret's YAML or a JSON/YAML map of entries) for models given as storage: {key, path} (env "+api.StorageConfigEnv+")")
	f.BoolVar(&o.inProcess, "in-process-predictors", true, "serve predictors of built-in formats inside this process, with no hop from the ingress (those without a logger, batcher, quality journal, storage key, more than one replica, or containerConcurrency or autoscaling settings without maxReplicas); false runs every predictor as a ferry serve process of its own. A service's annotation "+controlplane.AnnotationInProcess+" overrides this")
	o.rollout.addFlags(f)
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "auto", "auto (text on a terminal, JSON otherwise), json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

func runUp(ctx context.Context, o *upOptions, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the ferry binary: %w", err)
	}
	db, err := controlplane.OpenStore(o.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	var storageConfig api.StorageConfig
	if o.storageConfig != "" {
		if storageConfig, err = api.LoadStorageConfig(o.storageConfig); err != nil {
			return fmt.Errorf("--%s: %w", api.StorageConfigFlag, err)
		}
	}
	// Replicas pull their own models; opening the cache here checks the
	// storage flags once and sweeps staging left by a killed pull.
	if _, err := newStorage(o.storage, log, cmd.ErrOrStderr()); err != nil {
		return err
	}

	ingressLn, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.httpPort)))
	if err != nil {
		return fmt.Errorf("ingress listener: %w", err)
	}
	grpcLn, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.grpcPort)))
	if err != nil {
		ingressLn.Close()
		return fmt.Errorf("ingress gRPC listener: %w", err)
	}
	apiLn, err := net.Listen("tcp", o.apiAddr)
	if err != nil {
		ingressLn.Close()
		grpcLn.Close()
		return fmt.Errorf("management API listener %s: %w", o.apiAddr, err)
	}
	apiSec, err := o.api.setUp(apiLn, o.dataDir, log, cmd.ErrOrStderr())
	if err != nil {
		ingressLn.Close()
		grpcLn.Close()
		apiLn.Close()
		return err
	}
	plane, err := controlplane.New(controlplane.PlaneConfig{
		Controller: controlplane.Config{
			ServeArgs: o.storage.args(),
			Store:     db, Domain: o.domain, DataDir: o.dataDir, FerryBinary: self,
			ReplicaEnv:          storage.CredentialEnv(os.Environ()),
			StorageConfig:       storageConfig,
			Logger:              log,
			InProcessPredictors: o.inProcess,
		},
		// Always available: a service's annotation may ask for it.
		InProcessServe: serveInProcess,
		Autoscaler: controlplane.AutoscalerConfig{
			StableWindow: o.stableWindow, PanicWindow: o.panicWindow, ScaleToZeroAfter: o.scaleToZeroAfter, ScaleDownDelay: o.scaleDownDelay,
		},
		ActivationTimeout: o.activationTimeout,
		Ingress:           ingressLn, GRPC: grpcLn, API: apiSec.listener,
		APIHandler: func(p *controlplane.Plane) http.Handler { return apiSec.guard.Wrap(apiHandler(p)) },
		OnReady: func() {
			log.Info("ready for commands (ferry get isvc)", "ingress", ingressLn.Addr().String(), "grpc", grpcLn.Addr().String(), "api", apiSec.url, "domain", o.domain, "data", o.dataDir)
			printConsoleURL(cmd.OutOrStdout(), apiSec) // console.go
			// Pages only start-up touched go back to the page cache.
			_, _ = memtrim.Release()
		},
	})
	if err != nil {
		return err
	}
	for _, f := range o.files {
		if err := applyPath(plane.Controller(), f); err != nil {
			return err
		}
	}
	rollouts, err := o.rollout.newRunner(plane.Controller(), plane.Router(), log)
	if err != nil {
		return err
	}
	plane.Add(rollouts) // rollout_up.go: moves canaries of services with a rollout policy
	plane.Add(memtrim.Idle{Interval: 30 * time.Second})
	return plane.Run(ctx)
}

// applyPath applies a YAML file, or every .yaml/.yml/.json file in a
// directory.
func applyPath(ctl *controlplane.Controller, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("-f %s: %w", path, err)
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json")) {
				files = append(files, filepath.Join(path, n))
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		b = resolveRelativeURIs(b, filepath.Dir(f))
		if err := ctl.ApplyYAML(b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// resolveRelativeURIs rewrites storageUri: ./x and file://./x relative to
// the file's directory, so examples work from any working directory.
func resolveRelativeURIs(b []byte, dir string) []byte {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return b
	}
	for _, prefix := range []string{"storageUri: ./", "storageUri: \"./", "storageUri: file://./", "storageUri: \"file://./"} {
		b = bytes.ReplaceAll(b, []byte(prefix), []byte(strings.Replace(prefix, "./", abs+"/", 1)))
	}
	return b
}

// apiHandler serves the management API, the web console at /ui (its
// static files are open in apisecurity.go) and, on /metrics (and the
// console's console.RevisionMetricsPath), the control plane's autoscaling
// metrics with the ingress's latency histogram.
func apiHandler(p *controlplane.Plane) http.Handler {
	ctl := p.Controller()
	mux := http.NewServeMux()
	mux.Handle("/", controlplane.NewAPIServer(ctl).Handler())
	metrics := withIngressMetrics(ctl.MetricsHandler(p.Stats, p.Router().Waiting), p.Router())
	mux.Handle("GET /metrics", metrics)
	// The console's charts read the same counters (the operator's console
	// serves them from Prometheus at this path).
	mux.Handle("GET "+console.RevisionMetricsPath, metrics)
	console.Register(mux)
	return mux
}
