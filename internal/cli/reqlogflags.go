package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/reqlog"
)

// reqlogOptions are the request-logger flags `ferry serve` and `ferry
// agent` share (KServe's agent names).
type reqlogOptions struct {
	url       string
	mode      string
	spoolDir  string
	headers   []string
	isvcName  string
	namespace string
	component string
	endpoint  string
}

func (o *reqlogOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.url, "log-url", "", "log every request and response as a CloudEvent to this sink: http(s)://… or file:///path.jsonl")
	f.StringVar(&o.mode, "log-mode", "all", "with --log-url: all, request or response")
	f.StringVar(&o.spoolDir, "log-spool-dir", "", "with --log-url: directory where events wait while the sink is down (default: a ferry-spool directory in the temp dir)")
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
	source, _ := os.Hostname()
	return reqlog.New(reqlog.Config{
		Sink: sink, Mode: o.mode, Source: source,
		InferenceService: o.isvcName, Namespace: o.namespace, Component: o.component, Endpoint: o.endpoint,
		MetadataHeaders: o.headers, SpoolDir: spool, Logger: log,
	})
}
