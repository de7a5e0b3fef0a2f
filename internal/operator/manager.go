package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Config configures Run.
type Config struct {
	// REST is how to reach the API server.
	REST *rest.Config
	// ServeImage is the image that holds the ferry binary as its entrypoint.
	ServeImage string
	// LeaderElection makes only one of several replicas reconcile; on by
	// default in `ferry operator`. LeaderElectionNamespace is where the
	// lease lives (the in-cluster namespace when empty).
	LeaderElection          bool
	LeaderElectionNamespace string
	// MetricsAddr and ProbeAddr are where Prometheus metrics and the
	// /healthz and /readyz probes are served; "0" turns either off.
	MetricsAddr string
	ProbeAddr   string
	// IngressDomain, when set, gives each InferenceService an Ingress for
	// {name}.{namespace}.{IngressDomain} and that URL in its status;
	// IngressClassName is the Ingress class ("" for the cluster default).
	IngressDomain    string
	IngressClassName string
	// Gateway ("namespace/name"), when set, routes with Gateway API
	// HTTPRoutes attached to that Gateway instead of Ingresses, so that
	// canary splits are weighted; it needs IngressDomain and the
	// HTTPRoute CRD.
	Gateway string
	// SkipNameValidation lets a process build more than one manager (tests
	// do): controller-runtime otherwise refuses a controller name it has
	// seen before, so that metrics are not reported twice.
	SkipNameValidation bool
	// DefaultDeploymentMode is the deployment mode of InferenceServices
	// without the serving.kserve.io/deploymentMode annotation:
	// RawDeployment (when empty) or Serverless, which needs Knative
	// Serving's CRDs.
	DefaultDeploymentMode string
	// Namespace restricts the operator to one namespace; empty watches all.
	Namespace string
	// RuntimesConfigMap ("namespace/name") holds the runtime images by
	// framework (the predictors key, as KServe's inferenceservice-config),
	// read once at start.
	RuntimesConfigMap string
	runtimes          Runtimes
	// MaxConcurrentReconciles bounds the reconciles running at once (1 when 0).
	MaxConcurrentReconciles int
	// Webhook configures the admission webhooks (none when its Port is 0).
	Webhook WebhookConfig
	// Console, when set with a token, serves the web console at /ui on
	// the metrics address (MetricsAddr must not be "0").
	Console *ConsoleConfig
	// Rollout, when set, runs the rollout runner (metric-driven canaries)
	// on the leader.
	Rollout *RolloutConfig
	Log     *slog.Logger
}

// LeaderElectionID names the lease replicas compete for.
const LeaderElectionID = "ferry-operator.serving.kserve.io"

// Validate reports what is missing from c.
func (c Config) Validate() error {
	var errs []error
	if c.REST == nil {
		errs = append(errs, errors.New("no Kubernetes client configuration"))
	}
	if c.ServeImage == "" {
		errs = append(errs, errors.New("no serve image (--serve-image)"))
	}
	if c.Gateway != "" {
		if _, err := parseGateway(c.Gateway); err != nil {
			errs = append(errs, err)
		}
		if c.IngressDomain == "" {
			errs = append(errs, errors.New("--gateway needs --ingress-domain for the routes' hostnames"))
		}
	}
	if err := c.Webhook.validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := plan.DeploymentMode(nil, c.DefaultDeploymentMode); err != nil {
		errs = append(errs, fmt.Errorf("--default-deployment-mode: %w", err))
	}
	return errors.Join(errs...)
}

// NewManager builds the controller-runtime manager with the
// InferenceService reconciler registered; Start it to run. Most callers
// want Run.
func NewManager(c Config) (manager.Manager, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	lg := logr.FromSlogHandler(c.Log.Handler())
	// controller-runtime reads its package logger in places that have no
	// manager to ask (and prints a warning with a stack when it is unset).
	ctrllog.SetLogger(lg)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	metrics := metricsserver.Options{BindAddress: c.MetricsAddr}
	var ui *consoleAPI
	if c.Console != nil && c.Console.Token != "" && c.MetricsAddr != "0" {
		ui, metrics.ExtraHandlers = newConsole(*c.Console, c.Log)
	}
	opts := manager.Options{
		Scheme:                  scheme,
		Logger:                  lg,
		LeaderElection:          c.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: c.LeaderElectionNamespace,
		// Hand the lease over at once on a clean shutdown instead of
		// making the next replica wait out the lease.
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metrics,
		Controller:                    ctrlconfig.Controller{SkipNameValidation: &c.SkipNameValidation},
		HealthProbeBindAddress:        c.ProbeAddr,
		// InferenceServices are read as unstructured objects, which the
		// client fetches from the API server on every Get unless told to
		// use the informer cache as it does for typed objects.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	}
	// The only ConfigMaps the operator reads are the model-configs it
	// writes: caching every ConfigMap in the cluster would cost memory
	// for nothing.
	// Every cached object drops its managedFields, which the operator never
	// reads and which are a large share of a small object's size; updates
	// of cached objects omit them, which leaves the server's unchanged.
	opts.Cache = cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Label: labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy})},
	}, DefaultTransform: cache.TransformStripManagedFields()}
	if c.Namespace != "" {
		opts.Cache.DefaultNamespaces = map[string]cache.Config{c.Namespace: {}}
	}
	rc := c.REST
	if rc.QPS == 0 {
		// client-go's default is 5 requests per second, which makes a
		// thousand InferenceServices take minutes to create; as
		// controller-runtime's own config loader does, leave flow control
		// to the API server (priority and fairness).
		rc = rest.CopyConfig(rc)
		rc.QPS = -1
	}
	mgr, err := ctrl.NewManager(rc, opts)
	if err != nil {
		return nil, fmt.Errorf("operator: %w", err)
	}
	if c.RuntimesConfigMap != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.runtimes, err = LoadRuntimes(ctx, mgr.GetAPIReader(), c.RuntimesConfigMap)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("operator: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("informers", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informers not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}

	// serving.kserve.io is required; KFServing's serving.kubeflow.org and
	// either group's TrainedModels are reconciled when their CRDs are
	// installed (the informers of a kind the API server does not know
	// would never sync). Installing one later needs a restart.
	var isvcKinds, tmKinds []schema.GroupVersionKind
	// Serverless mode runs where Knative Serving is installed.
	knative, err := served(mgr, KnativeServiceGVK)
	if err != nil {
		return nil, err
	}
	if mode, _ := plan.DeploymentMode(nil, c.DefaultDeploymentMode); mode == plan.ModeServerless && !knative {
		return nil, fmt.Errorf("operator: --default-deployment-mode %s needs Knative Serving's %s CRD, which the API server does not serve", mode, KnativeServiceGVK)
	}
	if !knative {
		c.Log.Info("Knative Serving not installed; Serverless mode unavailable", "kind", KnativeServiceGVK.String())
	}
	for _, g := range []string{api.GroupKServe, api.GroupKubeflow} {
		isvcGVK := InferenceServiceGVK
		isvcGVK.Group = g
		tmGVK := TrainedModelGVK
		tmGVK.Group = g
		ok, err := served(mgr, isvcGVK)
		if err != nil {
			return nil, err
		}
		if !ok {
			if g == api.GroupKServe {
				return nil, fmt.Errorf("operator: the API server does not serve %s (install the CRDs: kubectl apply -f config/crd/)", isvcGVK)
			}
			c.Log.Info("group not installed; not reconciled", "kind", isvcGVK.String())
			continue
		}
		if c.Gateway != "" {
			if ok, err := served(mgr, HTTPRouteGVK); err != nil || !ok {
				return nil, errors.Join(err, fmt.Errorf("operator: --gateway needs the Gateway API's %s CRD, which the API server does not serve", HTTPRouteGVK))
			}
		}
		if err := addInferenceServiceController(mgr, scheme, c, isvcGVK, knative); err != nil {
			return nil, err
		}
		isvcKinds = append(isvcKinds, isvcGVK)
		if ok, err = served(mgr, tmGVK); err != nil {
			return nil, err
		}
		if !ok {
			c.Log.Info("kind not installed; not reconciled", "kind", tmGVK.String())
			continue
		}
		if err := addTrainedModelController(mgr, scheme, c, isvcGVK, tmGVK); err != nil {
			return nil, err
		}
		tmKinds = append(tmKinds, tmGVK)
	}
	if ok, err := served(mgr, InferenceGraphGVK); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		c.Log.Info("kind not installed; not reconciled", "kind", InferenceGraphGVK.String())
	} else if err := addGraphController(mgr, scheme, c); err != nil {
		return nil, err
	}
	if ui != nil {
		ui.cache, ui.live = mgr.GetClient(), mgr.GetAPIReader()
		cs, err := kubernetes.NewForConfig(mgr.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("operator: console: %w", err)
		}
		ui.podLogs = func(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) ([]byte, error) {
			return cs.CoreV1().Pods(ns).GetLogs(pod, opts).DoRaw(ctx)
		}
		ui.isvcs.Store(&isvcKinds)
		ui.tms.Store(&tmKinds)
	}
	if err := addRolloutRunner(mgr, c, isvcKinds); err != nil {
		return nil, err
	}
	if err := addWebhooks(mgr, c.Webhook, c.Log); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Run runs the operator until ctx is cancelled: it blocks while waiting for
// leadership, reconciles while leader, and returns after the manager has
// stopped its controllers, servers and lease (in that order).
func Run(ctx context.Context, c Config) error {
	mgr, err := NewManager(c)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// served reports whether the API server knows gvk.
func served(mgr manager.Manager, gvk schema.GroupVersionKind) (bool, error) {
	_, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("operator: discover %s: %w", gvk, err)
}

// controllerName names a group's controllers apart: the first group keeps
// the plain names its metrics and logs had.
func controllerName(kind string, gvk schema.GroupVersionKind) string {
	if gvk.Group == api.GroupKServe {
		return kind
	}
	return kind + "-" + strings.Split(gvk.Group, ".")[1] // serving.kubeflow.org: kubeflow
}

func addInferenceServiceController(mgr manager.Manager, scheme *runtime.Scheme, c Config, gvk schema.GroupVersionKind, knative bool) error {
	isvc := &unstructured.Unstructured{}
	isvc.SetGroupVersionKind(gvk)
	r := &Reconciler{Client: mgr.GetClient(), Scheme: scheme, GVK: gvk, ServeImage: c.ServeImage,
		Reader: mgr.GetAPIReader(), Runtimes: c.runtimes, RuntimesRef: c.RuntimesConfigMap,
		IngressDomain: c.IngressDomain, IngressClassName: c.IngressClassName,
		Knative: knative, DefaultDeploymentMode: c.DefaultDeploymentMode}
	b := ctrl.NewControllerManagedBy(mgr)
	if knative {
		ksvc := &unstructured.Unstructured{}
		ksvc.SetGroupVersionKind(KnativeServiceGVK)
		b = b.Owns(ksvc)
	}
	if c.Gateway != "" {
		gw, _ := parseGateway(c.Gateway) // checked by Validate
		r.Gateway = &gw
		route := &unstructured.Unstructured{}
		route.SetGroupVersionKind(HTTPRouteGVK)
		b = b.Owns(route)
	}
	err := b.
		Named(controllerName("inferenceservice", gvk)).
		// Status writes are the operator's own; only spec changes,
		// annotations (serving.kserve.io/autoscalerClass) and the owned
		// objects' changes need a reconcile.
		For(isvc, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&networkingv1.Ingress{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(c.MaxConcurrentReconciles, 1)}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// addTrainedModelController reconciles TrainedModels per parent
// InferenceService: a change to a model, to its parent (readiness, URL) or
// to the parent's model-config rebuilds that parent's list.
func addTrainedModelController(mgr manager.Manager, scheme *runtime.Scheme, c Config, isvcGVK, tmGVK schema.GroupVersionKind) error {
	tm := &unstructured.Unstructured{}
	tm.SetGroupVersionKind(tmGVK)
	parent := &unstructured.Unstructured{}
	parent.SetGroupVersionKind(isvcGVK)
	err := ctrl.NewControllerManagedBy(mgr).
		Named(controllerName("trainedmodel", tmGVK)).
		// The reconciler's own status writes do not change generation.
		Watches(tm, handler.EnqueueRequestsFromMapFunc(trainedModelParent), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(parent, &handler.EnqueueRequestForObject{}).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(modelConfigParent(isvcGVK.Group))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(c.MaxConcurrentReconciles, 1)}).
		Complete(&TrainedModelReconciler{Client: mgr.GetClient(), Scheme: scheme, ISVC: isvcGVK, TM: tmGVK})
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// parseGateway reads "namespace/name".
func parseGateway(s string) (Gateway, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return Gateway{}, fmt.Errorf("--gateway %q: want namespace/name", s)
	}
	return Gateway{Namespace: ns, Name: name}, nil
}
