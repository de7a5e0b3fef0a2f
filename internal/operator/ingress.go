package operator

import (
	"context"
	"fmt"
	"maps"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// ServiceIngress returns the Ingress that makes isvc reachable from outside
// the cluster at {name}.{namespace}.{domain}: every path goes to the entry
// component's Service (the transformer's when there is one), and an
// explainer's two explain paths go to the explainer's Service. A plain
// Ingress cannot weigh backends, so a canary split stays where the
// component Services put it (the revision with the larger share);
// weighted routing needs the Gateway API's HTTPRoute.
func ServiceIngress(isvc *api.InferenceService, domain, class string) *networkingv1.Ingress {
	name, ns := isvc.Metadata.Name, isvc.Metadata.Namespace
	backend := func(comp string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: ServiceName(name, comp),
			Port: networkingv1.ServiceBackendPort{Name: "http"},
		}}
	}
	exact, prefix := networkingv1.PathTypeExact, networkingv1.PathTypePrefix
	var paths []networkingv1.HTTPIngressPath
	if isvc.Spec.Explainer != nil {
		for _, p := range []string{"/v1/models/" + name + ":explain", "/v2/models/" + name + "/explain"} {
			paths = append(paths, networkingv1.HTTPIngressPath{Path: p, PathType: &exact, Backend: backend(api.ComponentExplainer)})
		}
	}
	paths = append(paths, networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend(plan.EntryComponent(&isvc.Spec))})
	ing := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels:    map[string]string{LabelInferenceService: name, LabelManagedBy: managedBy},
		},
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{
				Host:             plan.IngressHost(name, ns, domain),
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
			}},
		},
	}
	if class != "" {
		ing.Spec.IngressClassName = &class
	}
	return ing
}

func (r *Reconciler) ensureIngress(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService) error {
	want := ServiceIngress(isvc, r.IngressDomain, r.IngressClassName)
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, ing, func() error {
		if ing.Labels == nil {
			ing.Labels = map[string]string{}
		}
		maps.Copy(ing.Labels, want.Labels)
		ing.Spec = want.Spec
		return controllerutil.SetControllerReference(u, ing, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("ingress %s: %w", want.Name, err)
	}
	return nil
}

// removeIngress deletes the InferenceService's Ingress if the operator
// made one.
func (r *Reconciler) removeIngress(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService) error {
	ing := &networkingv1.Ingress{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: isvc.Metadata.Namespace, Name: isvc.Metadata.Name}, ing)
	if apierrors.IsNotFound(err) || err == nil && !metav1.IsControlledBy(ing, u) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.Client.Delete(ctx, ing); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete ingress %s: %w", ing.Name, err)
	}
	return nil
}
