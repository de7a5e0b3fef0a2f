package operator

import (
	"context"
	"fmt"
	"maps"

	"github.com/ferryserve/ferry/internal/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// LabelQualityPeer marks the predictor pods that journal predictions for
// quality monitoring: QualityPeersService selects them.
const LabelQualityPeer = "serving.ferryserve.io/quality-peer"

// QualityPeersName names the headless Service of isvc's quality peers.
func QualityPeersName(isvc string) string { return isvc + "-predictor-quality" }

// QualityPeersAddr is what a predictor pod with quality monitoring is given
// as --quality-peers: the headless Service's name, which resolves to the
// address of every ready pod it selects, and ferry serve's HTTP port.
func QualityPeersAddr(isvc *api.InferenceService) string {
	return fmt.Sprintf("%s.%s.svc:%d", QualityPeersName(isvc.Metadata.Name), isvc.Metadata.Namespace, httpPort)
}

// QualityPeersService is the headless Service (no cluster IP: its DNS
// name lists the pods) of the predictor pods of every revision that
// journal predictions, so that feedback sent to any of them reaches the
// one that journaled the prediction, a canary's included.
func QualityPeersService(isvc *api.InferenceService) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      QualityPeersName(isvc.Metadata.Name),
			Namespace: isvc.Metadata.Namespace,
			Labels:    componentLabels(isvc, api.ComponentPredictor),
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector: map[string]string{
				LabelInferenceService: isvc.Metadata.Name,
				LabelComponent:        api.ComponentPredictor,
				LabelQualityPeer:      "true",
			},
			Ports: []corev1.ServicePort{{Name: "http", Port: httpPort, TargetPort: intstr.FromInt32(httpPort), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// ensureQualityPeers writes the headless Service of the predictor pods
// that journal predictions (QualityPeersService) while isvc asks for
// quality monitoring, and deletes it when it no longer does.
func (r *Reconciler) ensureQualityPeers(ctx context.Context, owner *unstructured.Unstructured, isvc *api.InferenceService) error {
	want := QualityPeersService(isvc)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	if !qualityOn(isvc) {
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil || !metav1.IsControlledBy(svc, owner) {
			return err
		}
		return client.IgnoreNotFound(r.Client.Delete(ctx, svc))
	}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		maps.Copy(svc.Labels, want.Labels)
		// The cluster IP is immutable: None is set once, at creation.
		svc.Spec.ClusterIP = want.Spec.ClusterIP
		svc.Spec.Selector = want.Spec.Selector
		svc.Spec.Ports = want.Spec.Ports
		return controllerutil.SetControllerReference(owner, svc, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("quality peers service %s: %w", want.Name, err)
	}
	return nil
}
