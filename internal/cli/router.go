package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryserve/ferry/internal/graph"
	"github.com/ferryserve/ferry/internal/graphrouter"
)

type routerOptions struct {
	graphJSON     string
	name          string
	namespace     string
	serviceURLs   []string
	clusterDomain string
	host          string
	httpPort      int
	maxBodyBytes  int64
	stepTimeout   time.Duration
	logLevel      string
	logFormat     string
	config        string
}

func newRouterCmd() *cobra.Command {
	o := &routerOptions{}
	cmd := &cobra.Command{
		Use:   "router --graph-json JSON|FILE [--service-url NAME=URL]...",
		Short: "Serve one InferenceGraph over HTTP, calling its steps' services at their cluster addresses",
		Long: `Serve one InferenceGraph (serving.kserve.io/v1alpha1) as KServe's router does:
POST on any path runs the graph, GET /readyz answers 200. The operator runs
it as the graph's Deployment.

--graph-json is the graph as JSON (a whole object, or only its spec as KServe
passes it, then named by --name and --namespace), or a file holding it. A
step's serviceUrl is called as written; a serviceName is called at its
--service-url, else at http://{name}-predictor.{namespace}.{cluster-domain}
/v1/models/{name}:predict.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runRouter(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.graphJSON, "graph-json", "", "the InferenceGraph as JSON (starting with '{'), or a file holding it")
	f.StringVar(&o.name, "name", "", "the graph's name when --graph-json is only a spec")
	f.StringVar(&o.namespace, "namespace", "default", "the graph's namespace when --graph-json does not say")
	f.StringArrayVar(&o.serviceURLs, "service-url", nil, "NAME=URL: where steps naming service NAME are called (repeatable)")
	f.StringVar(&o.clusterDomain, "cluster-domain", graphrouter.DefaultClusterDomain, "suffix of cluster-local Service hosts")
	f.StringVar(&o.host, "host", "0.0.0.0", "address to listen on")
	f.IntVar(&o.httpPort, "http-port", 8080, "HTTP port")
	f.Int64Var(&o.maxBodyBytes, "max-body-bytes", graph.DefaultMaxBodyBytes, "largest request and step answer")
	f.DurationVar(&o.stepTimeout, "step-timeout", graphrouter.DefaultStepTimeout, "bound of a step's call when the graph sets no routerTimeouts.serviceClient (0: none)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

func runRouter(ctx context.Context, o *routerOptions, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	doc := []byte(o.graphJSON)
	switch {
	case o.graphJSON == "":
		return fmt.Errorf("--graph-json is required")
	case !strings.HasPrefix(strings.TrimSpace(o.graphJSON), "{"):
		if doc, err = os.ReadFile(o.graphJSON); err != nil {
			return fmt.Errorf("--graph-json: %w", err)
		}
	}
	ig, err := graphrouter.ParseGraph(doc, o.name, o.namespace)
	if err != nil {
		return err
	}
	urls, err := graphrouter.ParseServiceURLs(o.serviceURLs)
	if err != nil {
		return err
	}
	cfg := graphrouter.Config{
		Graph: ig, ServiceURLs: urls, ClusterDomain: o.clusterDomain,
		Addr:         net.JoinHostPort(o.host, strconv.Itoa(o.httpPort)),
		MaxBodyBytes: o.maxBodyBytes, StepTimeout: o.stepTimeout, Logger: log,
	}
	if o.stepTimeout <= 0 {
		cfg.StepTimeout = -1 // none
	}
	srv, err := graphrouter.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
