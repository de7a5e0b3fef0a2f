package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
)

// modelsConfigPath is the models config a multi-model predictor's replicas
// watch: the TrainedModels attached to the service, in KServe's format.
func (c *Controller) modelsConfigPath(ns, isvc string) string {
	return filepath.Join(c.cfg.DataDir, "modelconfig", ns, isvc+".json")
}

// trainedModels lists every stored TrainedModel, grouped by parent service
// ("ns/name").
func (c *Controller) trainedModels() (map[string][]*api.TrainedModel, error) {
	_, vals, err := c.cfg.Store.List(KindTrainedModel, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]*api.TrainedModel{}
	for _, v := range vals {
		var tm api.TrainedModel
		if err := json.Unmarshal(v, &tm); err != nil {
			return nil, err
		}
		k := tm.Metadata.Namespace + "/" + tm.Spec.InferenceService
		out[k] = append(out[k], &tm)
	}
	return out, nil
}

// writeModelsConfig writes a service's models config when it changed; the
// replicas' pullers pick it up.
func (c *Controller) writeModelsConfig(ns, isvc string, tms []*api.TrainedModel) error {
	cfg := make([]puller.ModelConfig, 0, len(tms))
	for _, tm := range tms {
		cfg = append(cfg, puller.ModelConfig{Name: tm.Metadata.Name, Spec: puller.ModelSpec{
			StorageURI: tm.Spec.Model.StorageURI, Framework: tm.Spec.Model.Framework, Memory: string(tm.Spec.Model.Memory),
		}})
	}
	slices.SortFunc(cfg, func(a, b puller.ModelConfig) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	p := c.modelsConfigPath(ns, isvc)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// reconcileTrainedModels writes every service's models config, updates the
// TrainedModels' status, and returns the model names each service answers
// to (for path routing).
func (c *Controller) reconcileTrainedModels(ctx context.Context, services []*router.Service) (map[string][]string, error) {
	groups, err := c.trainedModels()
	if err != nil {
		return nil, err
	}
	_, vals, err := c.cfg.Store.List(KindInferenceService, "")
	if err != nil {
		return nil, err
	}
	aliases := map[string][]string{}
	// Placement (IsMMSPredictor, FrameworkSupported,
	// MemoryResourceAvailable, as KServe checks it): a model that cannot go
	// on its parent stays out of the models config and says why.
	placement := map[*api.TrainedModel][]api.Condition{}
	for _, v := range vals {
		var isvc api.InferenceService
		if json.Unmarshal(v, &isvc) != nil {
			continue
		}
		k := isvc.Metadata.Namespace + "/" + isvc.Metadata.Name
		isvc.Default()
		maps.Copy(placement, plan.TrainedModelPlacement(&isvc, groups[k], builtin.Has))
		if _, uri, _, custom := isvc.PredictorFormat(); uri == "" && custom == nil {
			placed := slices.DeleteFunc(slices.Clone(groups[k]), func(tm *api.TrainedModel) bool {
				ok, _ := plan.Placed(placement[tm])
				return !ok
			})
			if err := c.writeModelsConfig(isvc.Metadata.Namespace, isvc.Metadata.Name, placed); err != nil {
				return nil, err
			}
		}
	}
	byKey := map[string]*router.Service{}
	for _, s := range services {
		byKey[s.Namespace+"/"+s.Name] = s
	}
	known := map[string]bool{}
	for _, tms := range groups {
		for _, tm := range tms {
			known[tm.Metadata.Namespace+"/"+tm.Metadata.Name] = true
		}
	}
	c.probes.forget(known)
	for k, tms := range groups {
		var parent api.InferenceService
		raw, err := c.cfg.Store.Get(KindInferenceService, k)
		parentFound := err == nil && json.Unmarshal(raw, &parent) == nil
		for _, tm := range tms {
			aliases[k] = append(aliases[k], tm.Metadata.Name)
			c.updateTrainedModelStatus(ctx, tm, parentFound, &parent, byKey[k], placement[tm])
		}
	}
	return aliases, nil
}

func (c *Controller) updateTrainedModelStatus(ctx context.Context, tm *api.TrainedModel, parentFound bool, parent *api.InferenceService, svc *router.Service, placement []api.Condition) {
	st := &api.TrainedModelStatus{ObservedGeneration: tm.Metadata.Generation}
	parentReady := api.Condition{Type: "InferenceServiceReady", Status: "False", Reason: "InferenceServiceNotFound", Message: fmt.Sprintf("InferenceService %q not found", tm.Spec.InferenceService)}
	ready := api.Condition{Type: "Ready", Status: "False", Reason: "InferenceServiceNotReady"}
	if parentFound && parent.Status != nil {
		parentReady = api.Condition{Type: "InferenceServiceReady", Status: "False", Reason: "InferenceServiceNotReady"}
		for _, cnd := range parent.Status.Conditions {
			if cnd.Type == "Ready" && cnd.Status == "True" {
				parentReady = api.Condition{Type: "InferenceServiceReady", Status: "True"}
			}
		}
		_, _, protocol, _ := parent.PredictorFormat()
		path := "/v1/models/" + tm.Metadata.Name + ":predict"
		if protocol == api.ProtocolV2 || protocol == "grpc-v2" {
			path = "/v2/models/" + tm.Metadata.Name + "/infer"
		}
		st.URL = parent.Status.URL + path
		st.Address = &api.Addressable{URL: c.cfg.IngressURL + path}
		if loaded, why := c.modelLoaded(ctx, svc, tm.Metadata.Namespace, tm.Metadata.Name); loaded {
			ready = api.Condition{Type: "Ready", Status: "True"}
		} else {
			ready = api.Condition{Type: "Ready", Status: "False", Reason: "ModelNotLoaded", Message: why}
		}
	}
	var old []api.Condition
	if tm.Status != nil {
		old = tm.Status.Conditions
	}
	conds := []api.Condition{parentReady, ready}
	if placement != nil {
		conds = plan.WithPlacement(conds, placement)
	}
	st.Conditions = carryTransitions(old, conds)
	if tm.Status != nil && string(mustJSON(tm.Status)) == string(mustJSON(st)) {
		return
	}
	tm.Status = st
	k := tm.Metadata.Namespace + "/" + tm.Metadata.Name
	if err := c.cfg.Store.Put(KindTrainedModel, k, mustJSON(tm)); err != nil {
		c.cfg.Logger.Error("trainedmodel status", "model", k, "err", err)
	}
}

// modelLoaded reports whether the ready predictor replicas of svc have
// loaded model, from the prober's last answer (no I/O here).
func (c *Controller) modelLoaded(ctx context.Context, svc *router.Service, ns, model string) (bool, string) {
	if svc == nil || svc.Components[router.Predictor] == nil {
		return false, "the InferenceService has no routed predictor"
	}
	var backends []string
	for _, t := range svc.Components[router.Predictor].Targets {
		backends = append(backends, t.Backends...)
	}
	return c.probes.loaded(ctx, ns+"/"+model, model, backends)
}
