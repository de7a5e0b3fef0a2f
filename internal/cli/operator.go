package cli

import (
	"fmt"
	"net"

	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
)

type operatorOptions struct {
	kubeconfig       string
	kubeContext      string
	serveImage       string
	namespace        string
	ingressDomain    string
	ingressClass     string
	gateway          string
	runtimes         string
	leaderElect      bool
	leaderElectionNS string
	metricsAddr      string
	probeAddr        string
	concurrency      int
	logLevel         string
	logFormat        string
	config           string
	deploymentMode   string
	rollout          operatorRollout
	webhook          operatorWebhook
	consoleOn        bool
	consoleToken     string
}

func newOperatorCmd() *cobra.Command {
	o := &operatorOptions{}
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run InferenceServices on a Kubernetes cluster (raw deployment mode)",
		Long: `Run the Kubernetes operator: reconcile serving.kserve.io/v1beta1
InferenceServices into a Deployment per predictor revision (running
"ferry serve" in --serve-image) and a Service, and report their status.

Install the CRDs first: kubectl apply -f config/crd/. See docs/operator.md
for what works and what is not done yet.

The cluster is the one --kubeconfig (or $KUBECONFIG, or ~/.kube/config)
names, or the in-cluster service account when none is found.

Every flag can also be set with an environment variable FERRY_<FLAG> or a key
in the --config YAML file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runOperator(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)")
	f.StringVar(&o.kubeContext, "context", "", "kubeconfig context to use (default: the current one)")
	f.StringVar(&o.serveImage, "serve-image", "ferry:"+Version, "container image whose entrypoint is ferry; predictors run \"ferry serve\" in it")
	f.StringVar(&o.namespace, "namespace", "", "watch only this namespace (default: all)")
	f.StringVar(&o.ingressDomain, "ingress-domain", "", "give each InferenceService an Ingress for {name}.{namespace}.DOMAIN and that URL; empty: no Ingress, cluster-local URLs")
	f.StringVar(&o.ingressClass, "ingress-class", "", "ingressClassName of those Ingresses (default: the cluster's default class)")
	f.StringVar(&o.runtimes, "runtimes-configmap", "", "ConfigMap (namespace/name) whose predictors key holds runtime images by framework (tensorflow, triton, pytorch, ...), as KServe's inferenceservice-config; read at start")
	f.StringVar(&o.gateway, "gateway", "", "route with Gateway API HTTPRoutes attached to this Gateway (namespace/name) instead of Ingresses, weighing canary splits; needs --ingress-domain")
	f.BoolVar(&o.leaderElect, "leader-elect", true, "elect a leader so that only one replica reconciles")
	f.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election lease (default: the operator's own, in-cluster)")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", `address of the Prometheus metrics endpoint; "0" turns it off`)
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", `address of /healthz and /readyz; "0" turns them off`)
	f.IntVar(&o.concurrency, "max-concurrent-reconciles", 4, "InferenceServices reconciled at once")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "auto", "auto (text on a terminal, JSON otherwise), json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values")
	f.StringVar(&o.deploymentMode, "default-deployment-mode", "RawDeployment", "deployment mode of InferenceServices without the serving.kserve.io/deploymentMode annotation: RawDeployment (Deployments and HPAs) or Serverless (Knative Services; needs Knative Serving)")
	o.rollout.addFlags(f)
	o.webhook.addFlags(f)
	f.BoolVar(&o.consoleOn, "console", true, "serve the web console at /ui on the metrics address (needs --metrics-bind-address)")
	f.StringVar(&o.consoleToken, "console-token", "", "bearer token of the console's API calls (default: a new random one, logged with the console's URL at start); set it from a Secret with FERRY_CONSOLE_TOKEN")
	return cmd
}

func runOperator(cmd *cobra.Command, o *operatorOptions) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.kubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	rollouts, err := o.rollout.config()
	if err != nil {
		return err
	}
	var ui *operator.ConsoleConfig
	if o.consoleOn && o.metricsAddr != "0" {
		tok := o.consoleToken
		if tok == "" {
			if tok, err = apiauth.NewToken(); err != nil {
				return err
			}
		}
		ui = &operator.ConsoleConfig{Token: tok}
		if rollouts != nil {
			// The charts read the Prometheus the rollouts read.
			if m, ok := rollouts.Metrics.(operator.RevisionTotaler); ok {
				ui.Metrics = m
			}
		}
		_, port, _ := net.SplitHostPort(o.metricsAddr)
		log.Info("web console on the metrics address; from a workstation: kubectl -n NAMESPACE port-forward deploy/ferry-operator "+port, "url", console.URL("http://localhost:"+port, tok))
	}
	log.Info("operator starting", "server", rest.Host, "serve_image", o.serveImage, "namespace", o.namespace, "leader_elect", o.leaderElect)
	return operator.Run(cmd.Context(), operator.Config{
		REST:                    rest,
		ServeImage:              o.serveImage,
		LeaderElection:          o.leaderElect,
		LeaderElectionNamespace: o.leaderElectionNS,
		MetricsAddr:             o.metricsAddr,
		ProbeAddr:               o.probeAddr,
		Namespace:               o.namespace,
		IngressDomain:           o.ingressDomain,
		IngressClassName:        o.ingressClass,
		Gateway:                 o.gateway,
		RuntimesConfigMap:       o.runtimes,
		MaxConcurrentReconciles: o.concurrency,
		DefaultDeploymentMode:   o.deploymentMode,
		Webhook:                 o.webhook.config(),
		Rollout:                 rollouts,
		Console:                 ui,
		Log:                     log,
	})
}
