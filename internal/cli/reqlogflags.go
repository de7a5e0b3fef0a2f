package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/reqlog"
)

// reqlogOptions are the request-logger flags `ferry serve` and `ferry
// agent` share (KServe's agent names).
type reqlogOptions struct {
	url           string
	mode          string
	spoolDir      string
	spoolMaxSize  string
	fsync         string
	fsyncInterval time.Duration
	headers       []string
	isvcName      string
	namespace     string
	component     string
	endpoint      string
}

func (o *reqlogOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.url, "log-url", "", "log every request and response as a CloudEvent to this sink: http(s)://… or file:///path.jsonl")
	f.StringVar(&o.mode, "log-mode", "all", "with --log-url: all, request or response")
	f.StringVar(&o.spoolDir, "log-spool-dir", "", "with --log-url: directory where events wait while the sink is down (default: a ferry-spool directory in the temp dir)")
	f.StringVar(&o.spoolMaxSize, "log-spool-max-size", "1Gi", "with --log-url: cap on the spool's size on disk; events beyond it are dropped and counted (ferry_logger_events_spool_full_total)")
	f.StringVar(&o.fsync, "log-fsync", "never", "with --log-url: when the spool is flushed to disk: never (survives a crash of the process), interval or always (also survive power loss)")
	f.DurationVar(&o.fsyncInterval, "log-fsync-interval", time.Second, "with --log-fsync interval: how often")
	f.StringSliceVar(&o.headers, "log-metadata-headers", nil, "with --log-url: request headers copied into each event's metadata extension")
	f.StringVar(&o.isvcName, "inference-service", "", "InferenceService name reported in logged events")
	f.StringVar(&o.namespace, "namespace", "", "namespace reported in logged events")
	f.StringVar(&o.component, "component", "predictor", "component reported in logged events")
	f.StringVar(&o.endpoint, "endpoint", "", "endpoint (e.g. default, canary) reported in logged events")
}

// newRequestLogger builds the logger; spoolKey tells default spool
// directories of processes on one machine apart (the listening port).
func (o *reqlogOptions) newRequestLogger(log *slog.Logger, spoolKey int) (*reqlog.Logger, error) {
	sink, err := reqlog.NewSink(o.url)
	if err != nil {
		return nil, fmt.Errorf("--log-url: %w", err)
	}
	spool := o.spoolDir
	if spool == "" {
		spool = filepath.Join(os.TempDir(), fmt.Sprintf("ferry-spool-%d", spoolKey))
	}
	maxSize, err := puller.ParseQuantity(o.spoolMaxSize)
	if err != nil {
		return nil, fmt.Errorf("--log-spool-max-size: %w", err)
	}
	if maxSize == 0 {
		maxSize = -1 // "0": no cap
	}
	fsync := reqlog.FsyncPolicy(o.fsync)
	if err := fsync.Validate(); err != nil {
		return nil, fmt.Errorf("--log-fsync: %w", err)
	}
	source, _ := os.Hostname()
	return reqlog.New(reqlog.Config{
		Sink: sink, Mode: o.mode, Source: source,
		InferenceService: o.isvcName, Namespace: o.namespace, Component: o.component, Endpoint: o.endpoint,
		MetadataHeaders: o.headers, SpoolDir: spool, SpoolMaxSize: maxSize,
		Fsync: fsync, FsyncInterval: o.fsyncInterval, Logger: log,
	})
}
