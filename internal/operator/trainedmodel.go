package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TrainedModelGVK is the TrainedModel kind, read as unstructured data and
// decoded with internal/api like InferenceServices.
var TrainedModelGVK = schema.GroupVersionKind{Group: api.GroupKServe, Version: api.VersionTrainedModel, Kind: api.KindTrainedModel}

// ModelConfigKey is the key of the model-config ConfigMap that holds the
// JSON list of models, KServe's models.json, which the puller
// (`ferry serve --models-config`, KServe's agent) watches.
const ModelConfigKey = "models.json"

// ModelConfigName is the ConfigMap that lists an InferenceService's
// TrainedModels, named as KServe names its shard 0.
func ModelConfigName(isvc string) string { return "modelconfig-" + isvc + "-0" }

// RenderModelConfig is the models.json of entries, in the puller's format.
func RenderModelConfig(entries []plan.ModelEntry) ([]byte, error) {
	list := make([]puller.ModelConfig, 0, len(entries))
	for _, e := range entries {
		list = append(list, puller.ModelConfig{Name: e.Name, Spec: puller.ModelSpec{StorageURI: e.StorageURI, Framework: e.Framework, Memory: e.Memory}})
	}
	return json.Marshal(list)
}

// TrainedModelReconciler keeps each InferenceService's model-config
// ConfigMap equal to the TrainedModels that name it, and their status. It
// is keyed by the InferenceService (namespace/name), so the ConfigMap is
// rebuilt from the full list every time: a deleted TrainedModel drops out
// without a finalizer, even one deleted while the operator was down.
type TrainedModelReconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
	// ISVC is the InferenceService kind the TrainedModels (kind TM, in
	// the same group) belong to.
	ISVC, TM schema.GroupVersionKind
	// Now is the clock for condition transition times (time.Now when nil).
	Now func() time.Time

	stale staleRetries
}

var _ reconcile.Reconciler = (*TrainedModelReconciler)(nil)

// Reconcile implements reconcile.Reconciler; req names an InferenceService.
func (r *TrainedModelReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := r.reconcileModels(ctx, req)
	return r.stale.retry(ctx, req, res, err)
}

func (r *TrainedModelReconciler) reconcileModels(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	parent := &unstructured.Unstructured{}
	parent.SetGroupVersionKind(r.ISVC)
	err := r.Client.Get(ctx, req.NamespacedName, parent)
	exists := err == nil && parent.GetDeletionTimestamp() == nil
	if client.IgnoreNotFound(err) != nil {
		return reconcile.Result{}, err
	}
	var pst api.InferenceServiceStatus
	if exists {
		if s, ok := parent.Object["status"]; ok {
			if b, err := json.Marshal(s); err == nil {
				_ = json.Unmarshal(b, &pst) // unreadable: not ready
			}
		}
	}
	ready := false
	for _, c := range pst.Conditions {
		ready = ready || c.Type == ConditionReady && c.Status == "True"
	}

	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(r.TM.GroupVersion().WithKind(r.TM.Kind + "List"))
	if err := r.Client.List(ctx, list, client.InNamespace(req.Namespace)); err != nil {
		return reconcile.Result{}, err
	}
	type model struct {
		u       *unstructured.Unstructured
		tm      *api.TrainedModel
		invalid string
	}
	var mine []model
	var valid []*api.TrainedModel
	gone := map[*api.TrainedModel]bool{}
	for i := range list.Items {
		u := &list.Items[i]
		tm, invalid := decodeTrainedModel(u)
		if tm.Spec.InferenceService != req.Name {
			continue
		}
		mine = append(mine, model{u, tm, invalid})
		gone[tm] = u.GetDeletionTimestamp() != nil
		if invalid == "" {
			valid = append(valid, tm)
		}
	}
	deleting := func(m *api.TrainedModel) bool { return gone[m] }
	// Placement (KServe's IsMMSPredictor, FrameworkSupported,
	// MemoryResourceAvailable): a model that cannot go on the parent is
	// left out of its model config and says why.
	var placement map[*api.TrainedModel][]api.Condition
	if exists {
		if isvc, _, err := decode(parent); err == nil {
			isvc.Default()
			live := slices.DeleteFunc(slices.Clone(valid), deleting)
			placement = plan.TrainedModelPlacement(isvc, live, builtin.Has)
			valid = slices.DeleteFunc(valid, func(m *api.TrainedModel) bool {
				ok, _ := plan.Placed(placement[m])
				return !deleting(m) && !ok
			})
		}
	}
	entries := plan.ModelConfig(req.Name, valid, deleting)
	written := false
	if exists {
		err := r.ensureModelConfig(ctx, parent, entries, len(mine) > 0)
		if owned := (*controllerutil.AlreadyOwnedError)(nil); errors.As(err, &owned) {
			// Held by the same-named InferenceService of the other group:
			// the models' status says they are not listed.
			err = nil
		} else {
			written = err == nil
		}
		if err != nil {
			return reconcile.Result{}, err
		}
	}

	now := r.now()
	for _, m := range mine {
		if deleting(m.tm) {
			continue
		}
		listed := written && slices.ContainsFunc(entries, func(e plan.ModelEntry) bool { return e.Name == m.tm.Metadata.Name })
		var old api.TrainedModelStatus
		if s, ok := m.u.Object["status"]; ok {
			if b, err := json.Marshal(s); err == nil {
				_ = json.Unmarshal(b, &old)
			}
		}
		st := api.TrainedModelStatus{ObservedGeneration: m.u.GetGeneration()}
		conds := plan.TrainedModelConditions(m.invalid, exists, ready, listed)
		if p, ok := placement[m.tm]; ok {
			conds = plan.WithPlacement(conds, p)
		}
		st.Conditions = mergeConditions(old.Conditions, now, conds...)
		if exists && pst.URL != "" {
			st.URL = pst.URL + "/v1/models/" + m.tm.Metadata.Name + ":predict"
			if pst.Address != nil {
				st.Address = &api.Addressable{URL: pst.Address.URL + "/v1/models/" + m.tm.Metadata.Name + ":predict"}
			}
		}
		if err := writeStatus(ctx, r.Client, m.u, old, st); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

func (r *TrainedModelReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// decodeTrainedModel reads u with internal/api, defaulted; invalid is the
// validation message, "" when the model is valid.
func decodeTrainedModel(u *unstructured.Unstructured) (*api.TrainedModel, string) {
	tm := &api.TrainedModel{}
	b, err := json.Marshal(u.Object)
	if err == nil {
		err = json.Unmarshal(b, tm)
	}
	if err != nil {
		// The parent is still known from the raw object, so the model's
		// status can say what is wrong.
		tm.Spec.InferenceService, _, _ = unstructured.NestedString(u.Object, "spec", "inferenceService")
		tm.Metadata.Name = u.GetName()
		return tm, fmt.Sprintf("%v: %v", api.ErrInvalid, err)
	}
	tm.Default()
	if err := tm.Validate(); err != nil {
		return tm, err.Error()
	}
	return tm, ""
}

// ensureModelConfig writes the parent's model-config ConfigMap, owned by
// the parent so that it goes with it. With no models (hasModels false) it only updates
// one that exists: most InferenceServices never have TrainedModels, and
// their pods mount the ConfigMap as optional.
func (r *TrainedModelReconciler) ensureModelConfig(ctx context.Context, parent *unstructured.Unstructured, entries []plan.ModelEntry, hasModels bool) error {
	data, err := RenderModelConfig(entries)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ModelConfigName(parent.GetName()), Namespace: parent.GetNamespace()}}
	if !hasModels {
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	_, err = controllerutil.CreateOrUpdate(ctx, r.Client, cm, func() error {
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		maps.Copy(cm.Labels, map[string]string{LabelInferenceService: parent.GetName(), LabelManagedBy: managedBy})
		cm.Data = map[string]string{ModelConfigKey: string(data)}
		return controllerutil.SetControllerReference(parent, cm, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("model config %s: %w", cm.Name, err)
	}
	return nil
}

// trainedModelParent maps a TrainedModel to the InferenceService it names.
func trainedModelParent(_ context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	name, _, _ := unstructured.NestedString(u.Object, "spec", "inferenceService")
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: u.GetNamespace(), Name: name}}}
}

// modelConfigParent maps a model-config ConfigMap to its InferenceService
// when that is of group.
func modelConfigParent(group string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()[LabelInferenceService]
		owner := metav1.GetControllerOf(o)
		if name == "" || o.GetName() != ModelConfigName(name) || owner == nil || owner.Name != name {
			return nil
		}
		if gv, err := schema.ParseGroupVersion(owner.APIVersion); err != nil || gv.Group != group {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	}
}
