package operator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/graphrouter"
	"github.com/ferryserve/ferry/internal/plan"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// InferenceGraphGVK is the InferenceGraph kind (serving.kserve.io only:
// KFServing had no graphs), read as unstructured data and decoded with
// internal/api.
var InferenceGraphGVK = schema.GroupVersionKind{Group: api.GroupKServe, Version: api.VersionInferenceGraph, Kind: api.KindInferenceGraph}

// LabelInferenceGraph marks a graph's Deployment, pods and Service, as
// KServe labels them.
const LabelInferenceGraph = "serving.kserve.io/inferencegraph"

// RouterContainerName is the graph router's container.
const RouterContainerName = "router"

// Graph status reasons.
const (
	ReasonServiceNotFound = "ServiceNotFound"
	ReasonRouterNotReady  = "RouterNotReady"
)

// GraphServiceURLs maps each service a graph's steps name to the URL the
// router calls it at, as KServe's graph controller resolves it: the
// InferenceService's address (its entry component's Service: the
// transformer's when there is one) and the predictor protocol's path, V1
// :predict or V2 /infer. services holds the named InferenceServices by
// name; a name missing from it is returned in missing, sorted.
func GraphServiceURLs(ig *api.InferenceGraph, services map[string]*api.InferenceService, addresses map[string]string) (urls map[string]string, missing []string) {
	urls = map[string]string{}
	for _, n := range ig.Spec.Nodes {
		for _, s := range n.Steps {
			name := s.ServiceName
			if name == "" {
				continue
			}
			isvc := services[name]
			if isvc == nil {
				if !slices.Contains(missing, name) {
					missing = append(missing, name)
				}
				continue
			}
			base := addresses[name]
			if base == "" {
				base = clusterURL(name, plan.EntryComponent(&isvc.Spec), ig.Metadata.Namespace)
			}
			urls[name] = base + plan.PredictPath(isvc)
		}
	}
	slices.Sort(missing)
	return urls, missing
}

// GraphRouterArgs are the router container's arguments: `ferry router`
// with the graph (metadata and spec only) inline and each named service's
// URL, in a stable order so that an unchanged graph keeps its pods.
func GraphRouterArgs(ig *api.InferenceGraph, urls map[string]string) ([]string, error) {
	doc, err := json.Marshal(struct {
		APIVersion string                 `json:"apiVersion"`
		Kind       string                 `json:"kind"`
		Metadata   map[string]string      `json:"metadata"`
		Spec       api.InferenceGraphSpec `json:"spec"`
	}{api.GroupKServe + "/" + api.VersionInferenceGraph, api.KindInferenceGraph,
		map[string]string{"name": ig.Metadata.Name, "namespace": ig.Metadata.Namespace}, ig.Spec})
	if err != nil {
		return nil, fmt.Errorf("graph json: %w", err)
	}
	args := []string{"router", "--http-port", strconv.Itoa(httpPort), "--log-format", "json", "--graph-json", string(doc)}
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		args = append(args, "--service-url", name+"="+urls[name])
	}
	return args, nil
}

// GraphDeployment is the Deployment {name} that runs a graph's router
// (`ferry router` in serveImage on port 8080) with the graph's resources
// and scheduling fields; minReplicas (at least one) replicas. ig must be
// defaulted and valid. The owner reference is added by the caller.
func GraphDeployment(ig *api.InferenceGraph, urls map[string]string, serveImage string) (*appsv1.Deployment, error) {
	name, ns := ig.Metadata.Name, ig.Metadata.Namespace
	args, err := GraphRouterArgs(ig, urls)
	if err != nil {
		return nil, err
	}
	c := corev1.Container{
		Name:  RouterContainerName,
		Image: serveImage,
		Args:  args,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Path: graphrouter.ReadyPath, Port: intstr.FromInt32(httpPort)}}},
	}
	s := &ig.Spec
	if s.Resources != nil {
		if err := convertJSON(s.Resources, &c.Resources); err != nil {
			return nil, fmt.Errorf("spec.resources: %w", err)
		}
	}
	pod := corev1.PodSpec{Containers: []corev1.Container{c}, NodeSelector: s.NodeSelector, NodeName: s.NodeName,
		ServiceAccountName: s.ServiceAccountName}
	if s.Affinity != nil {
		pod.Affinity = &corev1.Affinity{}
		if err := convertJSON(s.Affinity, pod.Affinity); err != nil {
			return nil, fmt.Errorf("spec.affinity: %w", err)
		}
	}
	if s.Tolerations != nil {
		if err := convertJSON(s.Tolerations, &pod.Tolerations); err != nil {
			return nil, fmt.Errorf("spec.tolerations: %w", err)
		}
	}
	replicas := int32(1)
	if s.MinReplicas != nil && *s.MinReplicas > 0 {
		replicas = *s.MinReplicas
	}
	labels := map[string]string{LabelInferenceGraph: name, LabelManagedBy: managedBy}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelInferenceGraph: name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)}, Spec: pod},
		},
	}
	b, err := json.Marshal(d.Spec)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	d.Annotations = map[string]string{AnnotationSpecHash: hex.EncodeToString(sum[:8])}
	return d, nil
}

// GraphService is the Service {name} in front of a graph's router: port 80
// to the router's 8080, as KServe exposes a graph.
func GraphService(ig *api.InferenceGraph) *corev1.Service {
	name := ig.Metadata.Name
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ig.Metadata.Namespace,
			Labels: map[string]string{LabelInferenceGraph: name, LabelManagedBy: managedBy}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelInferenceGraph: name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(httpPort),
				Protocol: corev1.ProtocolTCP}},
		},
	}
}

// GraphReconciler runs each InferenceGraph as KServe's raw deployment mode
// does: a router Deployment and a Service named like the graph, owned by
// it, and a status that is Ready once the Deployment is available.
type GraphReconciler struct {
	Client     client.Client
	Scheme     *runtime.Scheme
	ServeImage string
	// IngressDomain, when set, exposes each graph at
	// {name}.{namespace}.{IngressDomain} with an Ingress of class
	// IngressClassName, or an HTTPRoute attached to Gateway when that is
	// set, and makes that its status URL.
	IngressDomain    string
	IngressClassName string
	Gateway          *Gateway
	// Now is the clock for condition transition times (time.Now when nil).
	Now func() time.Time

	stale staleRetries
}

var _ reconcile.Reconciler = (*GraphReconciler)(nil)

// Reconcile implements reconcile.Reconciler.
func (r *GraphReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := r.reconcileGraph(ctx, req)
	return r.stale.retry(ctx, req, res, err)
}

func (r *GraphReconciler) reconcileGraph(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(InferenceGraphGVK)
	if err := r.Client.Get(ctx, req.NamespacedName, u); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if u.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil // the garbage collector removes what it owns
	}
	var old api.InferenceGraphStatus
	if s, ok := u.Object["status"]; ok {
		_ = convertJSON(s, &old) // a status we cannot read is rewritten
	}
	url := fmt.Sprintf("http://%s.%s.svc.cluster.local", u.GetName(), u.GetNamespace())
	var extra []api.Condition // besides Ready
	status := func(ready bool, reason, msg string) api.InferenceGraphStatus {
		return api.InferenceGraphStatus{
			ObservedGeneration: u.GetGeneration(),
			URL:                url,
			DeploymentMode:     string(plan.ModeRawDeployment),
			Conditions:         mergeConditions(old.Conditions, r.now(), append(extra, condition(ConditionReady, ready, reason, msg))...),
		}
	}
	ig := &api.InferenceGraph{}
	if err := convertJSON(u.Object, ig); err != nil {
		return reconcile.Result{}, writeStatus(ctx, r.Client, u, old, status(false, "InvalidSpec", fmt.Sprintf("%v: %v", api.ErrInvalid, err)))
	}
	ig.Default()
	if err := ig.Validate(); err != nil {
		return reconcile.Result{}, writeStatus(ctx, r.Client, u, old, status(false, "InvalidSpec", err.Error()))
	}
	urls, missing, err := r.serviceURLs(ctx, ig)
	if err != nil {
		return reconcile.Result{}, err
	}
	if len(missing) > 0 {
		// As KServe's graph controller, wait for the services: a change
		// to one of them enqueues the graph again (see graphsNaming).
		return reconcile.Result{}, writeStatus(ctx, r.Client, u, old, status(false, ReasonServiceNotFound,
			fmt.Sprintf("%v: no InferenceService %q in namespace %s", errServiceNotFound, missing, ig.Metadata.Namespace)))
	}
	scaling, serr := graphScaling(ig)
	if serr != nil {
		// A metric only Knative scales on: the router runs at
		// minReplicas, and the status says why nothing scales it.
		extra = append(extra, condition(ConditionAutoscaled, false, "UnsupportedMetric", serr.Error()))
	}
	d, err := r.ensureDeployment(ctx, u, ig, urls, scaling.HPA != nil)
	if err == nil {
		err = r.ensureService(ctx, u, ig)
	}
	if err == nil {
		err = r.ensureHPA(ctx, u, ig, scaling.HPA)
	}
	if err == nil {
		url, err = r.ensureExposure(ctx, u, ig, url)
	}
	if owned := (*controllerutil.AlreadyOwnedError)(nil); errors.As(err, &owned) {
		// A name the graph needs is held by another owner (an
		// InferenceService's Ingress or route of the same name): a retry
		// cannot succeed, so say so and wait for a change.
		return reconcile.Result{}, writeStatus(ctx, r.Client, u, old, status(false, "NameTaken", err.Error()))
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if !available(d) {
		return reconcile.Result{}, writeStatus(ctx, r.Client, u, old, status(false, ReasonRouterNotReady,
			fmt.Sprintf("Deployment %s is not available yet", d.Name)))
	}
	return reconcile.Result{}, writeStatus(ctx, r.Client, u, old, status(true, "", ""))
}

var errServiceNotFound = errors.New("service not found")

// ConditionAutoscaled is False on a graph whose scaleMetric a
// HorizontalPodAutoscaler cannot scale on (rps, concurrency); absent
// otherwise.
const ConditionAutoscaled = "Autoscaled"

// graphScaling is the router's scaling, decided as for an
// InferenceService's component in raw deployment mode.
func graphScaling(ig *api.InferenceGraph) (plan.Scaling, error) {
	x := &api.ComponentExtensionSpec{MinReplicas: ig.Spec.MinReplicas, MaxReplicas: ig.Spec.MaxReplicas, ScaleTarget: ig.Spec.ScaleTarget}
	if ig.Spec.ScaleMetric != nil {
		x.ScaleMetric = *ig.Spec.ScaleMetric
	}
	s, err := plan.KubeScaling("graph", x, ig.Metadata.Annotations)
	if err != nil {
		s.HPA = nil
		err = errors.New(strings.Replace(err.Error(), "spec.graph.", "spec.", 1))
	}
	return s, err
}

// GraphHPA is the HorizontalPodAutoscaler of a graph's router Deployment.
func GraphHPA(ig *api.InferenceGraph, p *plan.HPA) *autoscalingv2.HorizontalPodAutoscaler {
	name := ig.Metadata.Name
	lo, target := p.Min, p.TargetUtilization
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ig.Metadata.Namespace,
			Labels: map[string]string{LabelInferenceGraph: name, LabelManagedBy: managedBy}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    &lo,
			MaxReplicas:    p.Max,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceName(p.Metric),
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
				},
			}},
		},
	}
}

// ensureHPA writes the router's HPA, or deletes the one the graph owns
// when p is nil.
func (r *GraphReconciler) ensureHPA(ctx context.Context, owner *unstructured.Unstructured, ig *api.InferenceGraph, p *plan.HPA) error {
	h := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: ig.Metadata.Name, Namespace: ig.Metadata.Namespace}}
	if p == nil {
		return r.deleteOwned(ctx, owner, h)
	}
	want := GraphHPA(ig, p)
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, h, func() error {
		if h.Labels == nil {
			h.Labels = map[string]string{}
		}
		maps.Copy(h.Labels, want.Labels)
		// Only the fields the operator sets: the API server defaults
		// the rest (behavior).
		h.Spec.ScaleTargetRef, h.Spec.MinReplicas, h.Spec.MaxReplicas, h.Spec.Metrics =
			want.Spec.ScaleTargetRef, want.Spec.MinReplicas, want.Spec.MaxReplicas, want.Spec.Metrics
		return controllerutil.SetControllerReference(owner, h, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("HPA %s: %w", want.Name, err)
	}
	return nil
}

// deleteOwned deletes o (named, of its type) if owner controls it.
func (r *GraphReconciler) deleteOwned(ctx context.Context, owner *unstructured.Unstructured, o client.Object) error {
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(o), o)
	if apierrors.IsNotFound(err) || err == nil && !metav1.IsControlledBy(o, owner) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s: %w", o.GetName(), err)
	}
	return nil
}

// GraphIngress is the Ingress that exposes a graph at
// {name}.{namespace}.{domain}: every path to its Service.
func GraphIngress(ig *api.InferenceGraph, domain, class string) *networkingv1.Ingress {
	name, ns := ig.Metadata.Name, ig.Metadata.Namespace
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{LabelInferenceGraph: name, LabelManagedBy: managedBy}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: plan.IngressHost(name, ns, domain),
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: name, Port: networkingv1.ServiceBackendPort{Name: "http"}}},
			}}}},
		}}},
	}
	if class != "" {
		ing.Spec.IngressClassName = &class
	}
	return ing
}

// GraphRoute is the HTTPRoute that exposes a graph at
// {name}.{namespace}.{domain} through gw: every path to its Service.
func GraphRoute(ig *api.InferenceGraph, domain string, gw Gateway) *unstructured.Unstructured {
	name, ns := ig.Metadata.Name, ig.Metadata.Namespace
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"group": HTTPRouteGVK.Group, "kind": "Gateway", "namespace": gw.Namespace, "name": gw.Name}},
			"hostnames":  []any{plan.IngressHost(name, ns, domain)},
			"rules":      []any{map[string]any{"matches": pathMatch("PathPrefix", "/"), "backendRefs": []any{backendRef(name, 100)}}},
		},
	}}
	u.SetGroupVersionKind(HTTPRouteGVK)
	u.SetName(name)
	u.SetNamespace(ns)
	u.SetLabels(map[string]string{LabelInferenceGraph: name, LabelManagedBy: managedBy})
	return u
}

// ensureExposure writes the graph's Ingress or HTTPRoute when the operator
// has an ingress domain (removing the Ingress when routes replaced it) and
// returns the graph's URL: that host, else clusterURL.
func (r *GraphReconciler) ensureExposure(ctx context.Context, owner *unstructured.Unstructured, ig *api.InferenceGraph, clusterURL string) (string, error) {
	name, ns := ig.Metadata.Name, ig.Metadata.Namespace
	ingress := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	switch {
	case r.Gateway != nil:
		if err := (&Reconciler{Client: r.Client, Scheme: r.Scheme}).ensureRoute(ctx, owner, GraphRoute(ig, r.IngressDomain, *r.Gateway)); err != nil {
			return "", err
		}
		if err := r.deleteOwned(ctx, owner, ingress); err != nil {
			return "", err
		}
	case r.IngressDomain != "":
		want := GraphIngress(ig, r.IngressDomain, r.IngressClassName)
		_, err := controllerutil.CreateOrUpdate(ctx, r.Client, ingress, func() error {
			if ingress.Labels == nil {
				ingress.Labels = map[string]string{}
			}
			maps.Copy(ingress.Labels, want.Labels)
			ingress.Spec = want.Spec
			return controllerutil.SetControllerReference(owner, ingress, r.Scheme)
		})
		if err != nil {
			return "", fmt.Errorf("ingress %s: %w", name, err)
		}
	default:
		return clusterURL, nil
	}
	return "http://" + plan.IngressHost(name, ns, r.IngressDomain), nil
}

func (r *GraphReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// serviceURLs reads the InferenceServices ig names (serving.kserve.io, in
// its namespace) and resolves their URLs.
func (r *GraphReconciler) serviceURLs(ctx context.Context, ig *api.InferenceGraph) (map[string]string, []string, error) {
	services, addresses := map[string]*api.InferenceService{}, map[string]string{}
	for _, n := range ig.Spec.Nodes {
		for _, s := range n.Steps {
			if s.ServiceName == "" || services[s.ServiceName] != nil {
				continue
			}
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(InferenceServiceGVK)
			err := r.Client.Get(ctx, client.ObjectKey{Namespace: ig.Metadata.Namespace, Name: s.ServiceName}, u)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			isvc, st, err := decode(u)
			if err != nil {
				// Its own status says why; the graph calls it as V1.
				isvc = &api.InferenceService{}
			}
			isvc.Metadata.Name, isvc.Metadata.Namespace = u.GetName(), u.GetNamespace()
			isvc.Default()
			services[s.ServiceName] = isvc
			if st.Address != nil {
				addresses[s.ServiceName] = st.Address.URL
			}
		}
	}
	urls, missing := GraphServiceURLs(ig, services, addresses)
	return urls, missing, nil
}

// ensureDeployment writes the router's Deployment; with scaled (an HPA
// owns its size) an existing Deployment keeps its replicas.
func (r *GraphReconciler) ensureDeployment(ctx context.Context, owner *unstructured.Unstructured, ig *api.InferenceGraph, urls map[string]string, scaled bool) (*appsv1.Deployment, error) {
	want, err := GraphDeployment(ig, urls, r.ServeImage)
	if err != nil {
		return nil, err
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	_, err = controllerutil.CreateOrUpdate(ctx, r.Client, d, func() error {
		if d.Labels == nil {
			d.Labels = map[string]string{}
		}
		maps.Copy(d.Labels, want.Labels)
		// The spec is replaced only when what the operator wants changed:
		// the API server's defaults in the stored spec would otherwise
		// make every reconcile an update.
		if d.CreationTimestamp.IsZero() || d.Annotations[AnnotationSpecHash] != want.Annotations[AnnotationSpecHash] {
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[AnnotationSpecHash] = want.Annotations[AnnotationSpecHash]
			selector, replicas := d.Spec.Selector, d.Spec.Replicas
			d.Spec = want.Spec
			if selector != nil { // immutable once created
				d.Spec.Selector = selector
			}
			if scaled && replicas != nil {
				d.Spec.Replicas = replicas
			}
		}
		return controllerutil.SetControllerReference(owner, d, r.Scheme)
	})
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", want.Name, err)
	}
	return d, nil
}

func (r *GraphReconciler) ensureService(ctx context.Context, owner *unstructured.Unstructured, ig *api.InferenceGraph) error {
	want := GraphService(ig)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		maps.Copy(svc.Labels, want.Labels)
		svc.Spec.Selector = want.Spec.Selector
		svc.Spec.Ports = want.Spec.Ports
		return controllerutil.SetControllerReference(owner, svc, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("service %s: %w", want.Name, err)
	}
	return nil
}

// addGraphController reconciles InferenceGraphs: their own changes, their
// Deployments' and Services', and those of the InferenceServices they
// name (a service appearing, or changing protocol or address).
func addGraphController(mgr manager.Manager, scheme *runtime.Scheme, c Config) error {
	ig := &unstructured.Unstructured{}
	ig.SetGroupVersionKind(InferenceGraphGVK)
	isvc := &unstructured.Unstructured{}
	isvc.SetGroupVersionKind(InferenceServiceGVK)
	r := &GraphReconciler{Client: mgr.GetClient(), Scheme: scheme, ServeImage: c.ServeImage,
		IngressDomain: c.IngressDomain, IngressClassName: c.IngressClassName}
	b := ctrl.NewControllerManagedBy(mgr)
	if c.Gateway != "" {
		gw, _ := parseGateway(c.Gateway) // checked by Validate
		r.Gateway = &gw
		route := &unstructured.Unstructured{}
		route.SetGroupVersionKind(HTTPRouteGVK)
		b = b.Owns(route)
	}
	err := b.
		Named("inferencegraph").
		For(ig, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&networkingv1.Ingress{}).
		Watches(isvc, handler.EnqueueRequestsFromMapFunc(graphsNaming(mgr.GetClient()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(c.MaxConcurrentReconciles, 1)}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// graphsNaming maps an InferenceService to the graphs of its namespace
// whose steps name it (listed from the informer cache).
func graphsNaming(cl client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(InferenceGraphGVK.GroupVersion().WithKind(api.KindInferenceGraph + "List"))
		if err := cl.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, g := range list.Items {
			if namesService(g.Object, o.GetName()) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}})
			}
		}
		return out
	}
}

// namesService reports whether a graph object has a step with serviceName
// name.
func namesService(obj map[string]any, name string) bool {
	nodes, _, _ := unstructured.NestedMap(obj, "spec", "nodes")
	for _, n := range nodes {
		node, _ := n.(map[string]any)
		steps, _ := node["steps"].([]any)
		for _, s := range steps {
			if step, _ := s.(map[string]any); step["serviceName"] == name {
				return true
			}
		}
	}
	return false
}
