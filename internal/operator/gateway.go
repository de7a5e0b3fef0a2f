package operator

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/router"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// HTTPRouteGVK is the Gateway API's HTTPRoute. It is written as
// unstructured data: the operator needs a handful of its fields, not the
// Gateway API's Go module.
var HTTPRouteGVK = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}

// AnnotationRouteHash holds the hash of the route spec the operator last
// wrote. The Gateway API's CRDs default fields (weights, kinds, matches),
// so comparing specs would differ on every pass; the hash of what the
// operator wants does not.
const AnnotationRouteHash = "serving.ferry.dev/route-hash"

// Gateway names the Gateway that HTTPRoutes attach to.
type Gateway struct {
	Namespace, Name string
}

// RevisionService returns the Service in front of one revision's pods,
// named as the revision (as Knative names it): an HTTPRoute weighs
// backends that are Services, so each revision in a split needs its own.
func RevisionService(isvc *api.InferenceService, component, rev string) *corev1.Service {
	svc := ComponentService(isvc, component, rev)
	svc.Name = rev
	svc.Labels[LabelRevision] = rev
	return svc
}

// backendRefs turns a component's traffic into weighted backends, one per
// revision Service; with no traffic yet, everything goes to fallback.
func backendRefs(traffic []plan.TrafficTarget, fallback string) []any {
	var refs []any
	for _, t := range traffic {
		if t.Percent > 0 {
			refs = append(refs, backendRef(t.Revision, t.Percent))
		}
	}
	if len(refs) == 0 && fallback != "" {
		refs = append(refs, backendRef(fallback, 100))
	}
	return refs
}

// backendRef spells out every field the Gateway API defaults, so that what
// the API server stores reads back as what was written.
func backendRef(service string, weight int) map[string]any {
	return map[string]any{"group": "", "kind": "Service", "name": service, "port": int64(80), "weight": int64(weight)}
}

func pathMatch(typ, value string) []any {
	return []any{map[string]any{"path": map[string]any{"type": typ, "value": value}}}
}

// ServiceRoutes returns the HTTPRoutes of an InferenceService, attached to
// gw: one named as the service for {name}.{namespace}.{domain}, whose root
// goes to the entry component's revisions weighted by their traffic (so a
// canary is split by the gateway, not only reported) and whose explain
// paths go to the explainer's; and one per component for
// {name}-{component}.{namespace}.{domain}, weighted the same way.
// traffic and fallback are by component.
func ServiceRoutes(isvc *api.InferenceService, domain string, gw Gateway, traffic map[string][]plan.TrafficTarget, fallback map[string]string) []*unstructured.Unstructured {
	name, ns := isvc.Metadata.Name, isvc.Metadata.Namespace
	route := func(routeName, host string, rules []any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"spec": map[string]any{
				"parentRefs": []any{map[string]any{"group": HTTPRouteGVK.Group, "kind": "Gateway", "namespace": gw.Namespace, "name": gw.Name}},
				"hostnames":  []any{host},
				"rules":      rules,
			},
		}}
		u.SetGroupVersionKind(HTTPRouteGVK)
		u.SetName(routeName)
		u.SetNamespace(ns)
		u.SetLabels(map[string]string{LabelInferenceService: name, LabelManagedBy: managedBy})
		return u
	}
	rule := func(comp, typ, path string) map[string]any {
		return map[string]any{"matches": pathMatch(typ, path), "backendRefs": backendRefs(traffic[comp], fallback[comp])}
	}
	var rules []any
	if isvc.Spec.Explainer != nil {
		for _, p := range []string{"/v1/models/" + name + ":explain", "/v2/models/" + name + "/explain"} {
			rules = append(rules, rule(api.ComponentExplainer, "Exact", p))
		}
	}
	entry := plan.EntryComponent(&isvc.Spec)
	tags := tagRevisions(traffic[entry])
	rules = append(rules, tagRules(isvc, tags)...)
	rules = append(rules, rule(entry, "PathPrefix", "/"))
	out := []*unstructured.Unstructured{route(name, plan.IngressHost(name, ns, domain), rules)}
	for _, tag := range []string{plan.TagLatest, plan.TagPrev} {
		if rev := tags[tag]; rev != "" {
			out = append(out, route(TagRouteName(name, tag), plan.IngressHost(tag+"-"+name, ns, domain),
				[]any{map[string]any{"matches": pathMatch("PathPrefix", "/"), "backendRefs": []any{backendRef(rev, 100)}}}))
		}
	}
	for _, comp := range plan.ComponentOrder {
		if componentSpec(isvc, comp) == nil {
			continue
		}
		out = append(out, route(ServiceName(name, comp), plan.IngressHost(ServiceName(name, comp), ns, domain),
			[]any{rule(comp, "PathPrefix", "/")}))
	}
	return out
}

// TagRouteName is the HTTPRoute for a tag's host, {tag}-{name}.{namespace}.{domain}
// (Knative's tag hosts), which sends everything to the tagged revision.
func TagRouteName(name, tag string) string { return name + "-tag-" + tag }

// tagRevisions maps the tags of a component's traffic to revisions:
// "latest" to the latest ready revision, "prev" to the rolled-out one a
// canary shares traffic with.
func tagRevisions(traffic []plan.TrafficTarget) map[string]string {
	tags := map[string]string{}
	for _, t := range traffic {
		switch {
		case t.Latest:
			tags[plan.TagLatest] = t.Revision
		case t.Tag != "":
			tags[t.Tag] = t.Revision
		}
	}
	return tags
}

// tagRules are the header-matched rules of a service's route, before its
// split, as `ferry up`'s ingress orders them: Knative's tag header
// (Knative-Serving-Tag: prev) first, then the route-rules annotation's
// header and cookie rules in their order. The Gateway API gives a rule
// with header matches precedence over the bare path rule, and among rules
// as specific, the first listed. A rule whose tag has no revision now is
// left out (its requests take the split). A cookie is matched with a
// regular expression over the Cookie header (the Gateway API has no
// cookie match), which gateways support as an extended feature.
func tagRules(isvc *api.InferenceService, tags map[string]string) []any {
	var rules []any
	add := func(header map[string]any, tag string) {
		if rev := tags[tag]; rev != "" {
			rules = append(rules, map[string]any{
				"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}, "headers": []any{header}}},
				"backendRefs": []any{backendRef(rev, 100)},
			})
		}
	}
	for _, tag := range []string{plan.TagLatest, plan.TagPrev} {
		add(map[string]any{"type": "Exact", "name": router.HeaderTag, "value": tag}, tag)
	}
	aff, err := router.ParseAffinity(isvc.Metadata.Annotations)
	if err != nil || aff == nil {
		return rules // the webhook refuses a malformed annotation
	}
	for _, m := range aff.Rules {
		if m.Header != "" {
			add(map[string]any{"type": "Exact", "name": m.Header, "value": m.Value}, m.Tag)
			continue
		}
		add(map[string]any{"type": "RegularExpression", "name": "Cookie",
			"value": `(^|;\s*)` + regexp.QuoteMeta(m.Cookie) + "=" + regexp.QuoteMeta(m.Value) + `(;|$)`}, m.Tag)
	}
	return rules
}

// ensureRevisionServices gives each kept revision its Service, controlled
// by the revision's Deployment so that it goes with it.
func (r *Reconciler) ensureRevisionServices(ctx context.Context, isvc *api.InferenceService, st *componentState, keep []string) error {
	for _, rev := range keep {
		d := st.revs[rev]
		if d == nil {
			continue
		}
		want := withEntryPort(RevisionService(isvc, st.name, rev), d)
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: want.Namespace}}
		if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
			if svc.Labels == nil {
				svc.Labels = map[string]string{}
			}
			maps.Copy(svc.Labels, want.Labels)
			svc.Spec.Selector = want.Spec.Selector
			svc.Spec.Ports = want.Spec.Ports
			return controllerutil.SetControllerReference(d, svc, r.Scheme)
		}); err != nil {
			return fmt.Errorf("revision service %s: %w", rev, err)
		}
	}
	return nil
}

// ensureRoutes writes the HTTPRoutes of an InferenceService and deletes
// the component routes of components it no longer has and the tag routes
// of tags no revision holds now.
func (r *Reconciler) ensureRoutes(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, traffic map[string][]plan.TrafficTarget, fallback map[string]string) error {
	want := ServiceRoutes(isvc, r.IngressDomain, *r.Gateway, traffic, fallback)
	names := map[string]bool{}
	for _, w := range want {
		names[w.GetName()] = true
		if err := r.ensureRoute(ctx, u, w); err != nil {
			return err
		}
	}
	var stale []string
	for _, comp := range plan.ComponentOrder {
		stale = append(stale, ServiceName(isvc.Metadata.Name, comp))
	}
	for _, tag := range []string{plan.TagLatest, plan.TagPrev} {
		stale = append(stale, TagRouteName(isvc.Metadata.Name, tag))
	}
	for _, n := range stale {
		if names[n] {
			continue
		}
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

func (r *Reconciler) ensureRoute(ctx context.Context, owner *unstructured.Unstructured, want *unstructured.Unstructured) error {
	b, err := json.Marshal(want.Object["spec"])
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	have := &unstructured.Unstructured{}
	have.SetGroupVersionKind(HTTPRouteGVK)
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case apierrors.IsNotFound(err):
		want.SetAnnotations(map[string]string{AnnotationRouteHash: hash})
		if err := controllerutil.SetControllerReference(owner, want, r.Scheme); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("create HTTPRoute %s: %w", want.GetName(), err)
		}
		log.FromContext(ctx).Info("created HTTPRoute", "route", want.GetName())
		return nil
	case err != nil:
		return err
	case have.GetAnnotations()[AnnotationRouteHash] == hash && metav1.IsControlledBy(have, owner):
		return nil
	}
	if err := controllerutil.SetControllerReference(owner, have, r.Scheme); err != nil {
		return err
	}
	ann := have.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationRouteHash] = hash
	have.SetAnnotations(ann)
	labels := have.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, want.GetLabels())
	have.SetLabels(labels)
	have.Object["spec"] = want.Object["spec"]
	if err := r.Client.Update(ctx, have); err != nil {
		return fmt.Errorf("update HTTPRoute %s: %w", have.GetName(), err)
	}
	return nil
}

// routeCondition reads what the Gateway reported about the service's route
// (its status.parents entry for the operator's Gateway): a False Accepted
// or ResolvedRefs condition makes IngressReady False with the gateway's
// reason and message. ok is false while the gateway has reported nothing
// or all is well, which leaves IngressReady as planned (a gateway that
// writes no status does not hold services back).
func (r *Reconciler) routeCondition(ctx context.Context, ns, name string) (api.Condition, bool) {
	route := &unstructured.Unstructured{}
	route.SetGroupVersionKind(HTTPRouteGVK)
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, route); err != nil {
		return api.Condition{}, false
	}
	parents, _, _ := unstructured.NestedSlice(route.Object, "status", "parents")
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		ref, _ := pm["parentRef"].(map[string]any)
		refNS, _ := ref["namespace"].(string)
		if refNS == "" {
			refNS = ns
		}
		if ref["name"] != r.Gateway.Name || refNS != r.Gateway.Namespace {
			continue
		}
		conds, _ := pm["conditions"].([]any)
		for _, typ := range []string{"Accepted", "ResolvedRefs"} {
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] != typ || cm["status"] != "False" {
					continue
				}
				reason, _ := cm["reason"].(string)
				msg, _ := cm["message"].(string)
				return api.Condition{Type: ConditionIngressReady, Status: "False", Reason: cmp.Or(reason, "Route"+typ+"False"),
					Message: fmt.Sprintf("Gateway %s/%s: HTTPRoute %s is not %s: %s", r.Gateway.Namespace, r.Gateway.Name, name, strings.ToLower(typ), msg)}, true
			}
		}
	}
	return api.Condition{}, false
}

// withIngressCondition puts c in place of the planned IngressReady and,
// when c is not True, makes Ready False for it.
func withIngressCondition(conds []api.Condition, c api.Condition) []api.Condition {
	out := slices.Clone(conds)
	for i := range out {
		switch out[i].Type {
		case ConditionIngressReady:
			out[i] = c
		case "Ready":
			if c.Status != "True" {
				out[i] = api.Condition{Type: "Ready", Status: "False", Reason: "IngressNotReady", Message: c.Message}
			}
		}
	}
	return out
}
