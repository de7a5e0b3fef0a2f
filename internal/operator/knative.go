package operator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// KnativeServiceGVK is Knative Serving's Service. It is written as
// unstructured data: Knative's Go module is heavy, and the operator needs
// a handful of its fields.
var KnativeServiceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// AnnotationKnativeHash holds the hash of the Knative Service spec the
// operator last wrote. Knative's webhook defaults fields of the template
// and the traffic block, so comparing specs would differ on every pass;
// the hash of what the operator wants does not.
const AnnotationKnativeHash = "serving.ferry.dev/knative-hash"

// knativeTemplate returns spec.template of a component's Knative Service
// without its revision name, and a hash of it: the same pod as raw mode
// runs (ComponentDeployment builds it), in the one port Knative allows,
// with the autoscaling annotations (plan.KnativeScaling),
// containerConcurrency and timeoutSeconds. The hash, kept in the
// template's serving.ferry.dev/spec-hash annotation, decides when the
// template needs a new revision name: Knative refuses a template change
// that keeps its name.
func knativeTemplate(isvc *api.InferenceService, component, serveImage string) (map[string]any, string, error) {
	spec := componentSpec(isvc, component)
	if spec == nil {
		return nil, "", fmt.Errorf("the InferenceService has no %s", component)
	}
	ext := spec.Extensions()
	d, err := ComponentDeployment(isvc, component, "", "", serveImage, 1)
	if err != nil {
		return nil, "", err
	}
	scaling, err := plan.KnativeScaling(component, ext, isvc.Metadata.Annotations)
	if err != nil {
		return nil, "", err
	}
	pod := d.Spec.Template.Spec.DeepCopy()
	for i := range pod.Containers {
		knativeContainer(&pod.Containers[i], i == 0)
	}
	podMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
	if err != nil {
		return nil, "", err
	}
	if c := ext.ContainerConcurrency; c != nil {
		podMap["containerConcurrency"] = *c
	}
	if t := ext.TimeoutSeconds; t != nil {
		podMap["timeoutSeconds"] = *t
	}
	ann := copyMap(d.Spec.Template.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	maps.Copy(ann, scaling)
	labels := copyMap(d.Spec.Template.Labels)
	delete(labels, LabelRevision) // holds the revision name, given later
	tmpl := map[string]any{
		"metadata": map[string]any{"labels": stringMap(labels), "annotations": stringMap(ann)},
		"spec":     podMap,
	}
	b, err := json.Marshal(tmpl)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return tmpl, hex.EncodeToString(sum[:8]), nil
}

// knativeContainer trims a container to what Knative accepts: one port
// (the first, HTTP: ferry serve's gRPC port is not exposed), named http1
// or h2c or not at all, on the serving container only, and probes without
// a port (Knative points them at that port).
func knativeContainer(c *corev1.Container, serving bool) {
	if !serving {
		c.Ports = nil
	} else if len(c.Ports) > 0 {
		p := c.Ports[0]
		if p.Name != "h2c" {
			p.Name = "http1"
		}
		c.Ports = []corev1.ContainerPort{{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: p.Protocol}}
	}
	for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if pr == nil {
			continue
		}
		if pr.HTTPGet != nil {
			pr.HTTPGet.Port = intstrZero
		}
		if pr.TCPSocket != nil {
			pr.TCPSocket.Port = intstrZero
		}
	}
}

// intstrZero is an unset probe port: Knative points the probe at the
// container's port.
var intstrZero = intstr.IntOrString{}

func stringMap(m map[string]string) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// KnativeService returns the Knative Service of one of isvc's components,
// named as the component's raw-mode Service ({isvc}-{component}), whose
// template is revision rev (Knative names the revision after it, so
// Knative's revisions carry the names plan and `ferry up` give them) and
// whose traffic block carries plan's split (plan.KnativeTraffic). isvc must
// be defaulted and valid. Owner references are added by the caller.
func KnativeService(isvc *api.InferenceService, component, rev, serveImage string, traffic []plan.TrafficTarget) (*unstructured.Unstructured, error) {
	tmpl, hash, err := knativeTemplate(isvc, component, serveImage)
	if err != nil {
		return nil, err
	}
	return knativeService(isvc, component, rev, hash, tmpl, traffic), nil
}

func knativeService(isvc *api.InferenceService, component, rev, hash string, tmpl map[string]any, traffic []plan.TrafficTarget) *unstructured.Unstructured {
	tmpl = runtime.DeepCopyJSON(tmpl)
	meta := tmpl["metadata"].(map[string]any)
	meta["name"] = rev
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	labels[LabelRevision] = rev
	meta["labels"] = labels
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	ann[AnnotationSpecHash] = hash
	meta["annotations"] = ann
	var tr []any
	for _, t := range plan.KnativeTraffic(traffic) {
		e := map[string]any{"latestRevision": t.LatestRevision, "percent": t.Percent}
		if t.Tag != "" {
			e["tag"] = t.Tag
		}
		if t.RevisionName != "" {
			e["revisionName"] = t.RevisionName
		}
		tr = append(tr, e)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"template": tmpl, "traffic": tr},
	}}
	u.SetGroupVersionKind(KnativeServiceGVK)
	u.SetName(ServiceName(isvc.Metadata.Name, component))
	u.SetNamespace(isvc.Metadata.Namespace)
	u.SetLabels(componentLabels(isvc, component))
	return u
}

// knativeState is what a Serverless reconcile saw of one component.
type knativeState struct {
	name string
	// have is the component's Knative Service, nil when there is none.
	have *unstructured.Unstructured
	// tmpl and hash are the wanted template (knativeTemplate) and rev its
	// revision name.
	tmpl      map[string]any
	hash, rev string
	// failed: the spec cannot run; the Knative Service is left as it is.
	failed bool
}

// reconcileMode runs isvc in its deployment mode (plan.DeploymentMode):
// Serverless with a Knative Service per component, or raw mode
// (reconcileComponents). Entering either mode deletes what the other left.
func (r *Reconciler) reconcileMode(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, old api.InferenceServiceStatus) (api.InferenceServiceStatus, error) {
	mode, err := plan.DeploymentMode(isvc.Metadata.Annotations, r.DefaultDeploymentMode)
	if err != nil {
		return failed(old, u.GetGeneration(), "InvalidSpec", err.Error(), r.now()), nil
	}
	// Either mode's predictor pods find each other through it.
	if err := r.ensureQualityPeers(ctx, u, isvc); err != nil {
		return old, err
	}
	if mode == plan.ModeServerless {
		if !r.Knative {
			return failed(old, u.GetGeneration(), "KnativeNotInstalled", fmt.Sprintf("deployment mode %s needs Knative Serving: the API server did not serve %s when the operator started", mode, KnativeServiceGVK), r.now()), nil
		}
		return r.reconcileKnative(ctx, u, isvc, old)
	}
	if r.Knative {
		// Knative's routes own Services named as raw mode's component
		// Services: wait until the Knative Services and what they own are
		// gone (foreground deletion; their removal triggers a reconcile).
		left, err := r.removeKnativeServices(ctx, u, isvc, plan.ComponentOrder)
		if err != nil {
			return old, err
		}
		if left > 0 {
			st := failed(old, u.GetGeneration(), "DeploymentModeChanging", fmt.Sprintf("waiting for %d Knative Service(s) of Serverless mode to be deleted", left), r.now())
			st.Components = nil
			return st, nil
		}
	}
	return r.reconcileComponents(ctx, u, isvc, old)
}

// reconcileKnative is reconcileComponents for Serverless mode: it writes
// each component's Knative Service (template and traffic from plan, the
// same planner raw mode uses) and reports what Knative says of them.
func (r *Reconciler) reconcileKnative(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, old api.InferenceServiceStatus) (api.InferenceServiceStatus, error) {
	logger := log.FromContext(ctx)
	now := r.now()
	// What raw mode left: revisions, HPAs, Services, the Ingress, routes.
	for _, comp := range plan.ComponentOrder {
		if err := r.removeComponent(ctx, u, isvc, comp); err != nil {
			return old, err
		}
	}
	if err := r.removeIngress(ctx, u, isvc); err != nil {
		return old, err
	}
	if err := r.removeRoutes(ctx, u, isvc); err != nil {
		return old, err
	}

	in := plan.ServiceInput{Components: map[string]plan.Input{}, Previous: old.Conditions, Now: now}
	var states []*knativeState
	var gone []string
	for _, comp := range plan.ComponentOrder {
		spec := componentSpec(isvc, comp)
		if spec == nil {
			gone = append(gone, comp)
			continue
		}
		ks, input, err := r.observeKnative(ctx, u, isvc, comp, spec, old.Components[comp])
		if err != nil {
			return old, err
		}
		states = append(states, ks)
		in.Components[comp] = input
	}
	if _, err := r.removeKnativeServices(ctx, u, isvc, gone); err != nil {
		return old, err
	}
	out := plan.Service(in)

	st := api.InferenceServiceStatus{ObservedGeneration: u.GetGeneration(), Components: map[string]api.ComponentStatus{}}
	ready := map[string]plan.KnativeReadiness{}
	for _, ks := range states {
		co := out.Components[ks.name]
		for _, e := range co.Events {
			logger.Info(e.Message, "reason", e.Reason, "component", ks.name)
		}
		have := ks.have
		changed := false
		if !ks.failed {
			want := knativeService(isvc, ks.name, ks.rev, ks.hash, ks.tmpl, co.Traffic)
			var err error
			if have, changed, err = r.ensureKnativeService(ctx, u, want); err != nil {
				return old, err
			}
		}
		kst := readKnativeStatus(have)
		ready[ks.name] = plan.KnativeReadiness{Current: kst.current && !changed, Status: kst.ready.Status, Reason: kst.ready.Reason, Message: kst.ready.Message}
		s := co.Status()
		if len(kst.traffic) > 0 {
			s.Traffic = kst.traffic
		}
		s.URL = kst.url
		if kst.address != "" {
			s.Address = &api.Addressable{URL: kst.address}
		}
		st.Components[ks.name] = s
	}
	entry := st.Components[plan.EntryComponent(&isvc.Spec)]
	st.URL, st.Address = entry.URL, entry.Address
	st.Conditions = mergeConditions(old.Conditions, now, plan.KnativeConditions(out, ready, old.Conditions, now)...)
	return st, nil
}

// observeKnative reads a component's Knative Service, decides the revision
// name of the wanted template (the current one while the template is
// unchanged, the next number otherwise) and returns plan's input.
func (r *Reconciler) observeKnative(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, comp string, spec api.Component, prev api.ComponentStatus) (*knativeState, plan.Input, error) {
	name := isvc.Metadata.Name
	ks := &knativeState{name: comp}
	have, err := r.getKnativeService(ctx, isvc.Metadata.Namespace, ServiceName(name, comp))
	if err != nil {
		return nil, plan.Input{}, err
	}
	if have != nil && !metav1.IsControlledBy(have, u) {
		ref := metav1.GetControllerOf(have)
		if ref == nil {
			ref = &metav1.OwnerReference{Kind: "none"}
		}
		return nil, plan.Input{}, &controllerutil.AlreadyOwnedError{Object: have, Owner: *ref}
	}
	ks.have = have
	base := 0
	if have == nil {
		// The previous status names revisions Knative does not have
		// (raw mode's Deployments, or a component removed and added
		// again): start over, numbering after them.
		for _, r := range []string{prev.LatestCreatedRevision, prev.LatestReadyRevision, prev.LatestRolledoutRevision, prev.PreviousRolledoutRevision} {
			base = max(base, plan.RevisionNumber(r))
		}
		prev = api.ComponentStatus{}
	}
	in := plan.Input{Previous: prev}
	if c := spec.Extensions().CanaryTrafficPercent; c != nil {
		v := int(*c)
		in.CanaryTrafficPercent = &v
	}
	kst := readKnativeStatus(have)
	ks.tmpl, ks.hash, err = knativeTemplate(isvc, comp, r.ServeImage)
	switch {
	case err != nil:
		ks.failed = true
		in.Error = err.Error()
		ks.rev = kst.template
	case have == nil:
		ks.rev = plan.RevisionName(name, comp, base+1)
	case kst.templateHash == ks.hash:
		ks.rev = kst.template
	default:
		ks.rev = plan.RevisionName(name, comp, plan.RevisionNumber(kst.template)+1)
	}
	in.Revisions, in.Observed = plan.KnativeRevisions(plan.KnativeObservation{
		Template:              ks.rev,
		Current:               kst.current,
		LatestCreated:         kst.latestCreated,
		LatestReady:           kst.latestReady,
		Routed:                kst.routed,
		ConfigurationsReady:   kst.configurations.Status,
		ConfigurationsMessage: kst.configurations.Message,
	}, prev)
	return ks, in, nil
}

// knativeStatus is what the operator reads of a Knative Service.
type knativeStatus struct {
	// template and templateHash: the revision name and spec hash of the
	// template stored.
	template, templateHash string
	// current: status.observedGeneration is metadata.generation.
	current                    bool
	latestCreated, latestReady string
	url, address               string
	traffic                    []api.TrafficTarget
	routed                     []string
	ready, configurations      api.Condition
}

func readKnativeStatus(u *unstructured.Unstructured) knativeStatus {
	var k knativeStatus
	if u == nil {
		return k
	}
	k.template, _, _ = unstructured.NestedString(u.Object, "spec", "template", "metadata", "name")
	k.templateHash, _, _ = unstructured.NestedString(u.Object, "spec", "template", "metadata", "annotations", AnnotationSpecHash)
	og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	k.current = og == u.GetGeneration()
	k.latestCreated, _, _ = unstructured.NestedString(u.Object, "status", "latestCreatedRevisionName")
	k.latestReady, _, _ = unstructured.NestedString(u.Object, "status", "latestReadyRevisionName")
	k.url, _, _ = unstructured.NestedString(u.Object, "status", "url")
	k.address, _, _ = unstructured.NestedString(u.Object, "status", "address", "url")
	var st struct {
		Traffic    []api.TrafficTarget `json:"traffic"`
		Conditions []api.Condition     `json:"conditions"`
	}
	if s, ok := u.Object["status"]; ok {
		if b, err := json.Marshal(s); err == nil {
			_ = json.Unmarshal(b, &st) // an unreadable status reads as not ready
		}
	}
	k.traffic = st.Traffic
	for _, t := range st.Traffic {
		if t.RevisionName != "" && !slices.Contains(k.routed, t.RevisionName) {
			k.routed = append(k.routed, t.RevisionName)
		}
	}
	for _, c := range st.Conditions {
		switch c.Type {
		case "Ready":
			k.ready = c
		case "ConfigurationsReady":
			k.configurations = c
		}
	}
	return k
}

func (r *Reconciler) getKnativeService(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	have := &unstructured.Unstructured{}
	have.SetGroupVersionKind(KnativeServiceGVK)
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, have)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return have, nil
}

// ensureKnativeService creates want or updates the stored Knative Service
// when the hash of its spec differs from the one last written; it returns
// the object as stored and whether it wrote it.
func (r *Reconciler) ensureKnativeService(ctx context.Context, owner *unstructured.Unstructured, want *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
	b, err := json.Marshal(want.Object["spec"])
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	have, err := r.getKnativeService(ctx, want.GetNamespace(), want.GetName())
	if err != nil {
		return nil, false, err
	}
	if have == nil {
		want.SetAnnotations(map[string]string{AnnotationKnativeHash: hash})
		if err := controllerutil.SetControllerReference(owner, want, r.Scheme); err != nil {
			return nil, false, err
		}
		// The name is deterministic: a stale cache ends in AlreadyExists
		// and a retry, never in a second Knative Service.
		if err := r.Client.Create(ctx, want); err != nil {
			return nil, false, fmt.Errorf("create Knative Service %s: %w", want.GetName(), err)
		}
		log.FromContext(ctx).Info("created Knative Service", "service", want.GetName())
		return want, true, nil
	}
	if have.GetAnnotations()[AnnotationKnativeHash] == hash {
		return have, false, nil
	}
	ann := have.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationKnativeHash] = hash
	have.SetAnnotations(ann)
	labels := have.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, want.GetLabels())
	have.SetLabels(labels)
	have.Object["spec"] = want.Object["spec"]
	if err := r.Client.Update(ctx, have); err != nil {
		return nil, false, fmt.Errorf("update Knative Service %s: %w", have.GetName(), err)
	}
	return have, true, nil
}

// removeKnativeServices deletes the Knative Services of comps that isvc
// controls, in the foreground (the object stays, marked for deletion,
// until the garbage collector has removed its routes and revisions), and
// returns how many of them still exist.
func (r *Reconciler) removeKnativeServices(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, comps []string) (int, error) {
	left := 0
	for _, comp := range comps {
		have, err := r.getKnativeService(ctx, isvc.Metadata.Namespace, ServiceName(isvc.Metadata.Name, comp))
		if err != nil {
			return 0, err
		}
		if have == nil || !metav1.IsControlledBy(have, u) {
			continue
		}
		left++
		if have.GetDeletionTimestamp() != nil {
			continue
		}
		if err := r.Client.Delete(ctx, have, client.PropagationPolicy(metav1.DeletePropagationForeground)); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("delete Knative Service %s: %w", have.GetName(), err)
		}
		log.FromContext(ctx).Info("deleted Knative Service", "service", have.GetName())
	}
	return left, nil
}

// removeRoutes deletes the HTTPRoutes a --gateway operator wrote for isvc
// in raw mode.
func (r *Reconciler) removeRoutes(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService) error {
	if r.Gateway == nil {
		return nil
	}
	names := []string{isvc.Metadata.Name}
	for _, comp := range plan.ComponentOrder {
		names = append(names, ServiceName(isvc.Metadata.Name, comp))
	}
	for _, n := range names {
		old := &unstructured.Unstructured{}
		old.SetGroupVersionKind(HTTPRouteGVK)
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: isvc.Metadata.Namespace, Name: n}, old)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if metav1.IsControlledBy(old, u) {
			if err := r.Client.Delete(ctx, old); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete HTTPRoute %s: %w", n, err)
			}
		}
	}
	return nil
}
