package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/router"
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
	for _, v := range vals {
		var isvc api.InferenceService
		if json.Unmarshal(v, &isvc) != nil {
			continue
		}
		k := isvc.Metadata.Namespace + "/" + isvc.Metadata.Name
		if _, uri, _, custom := isvc.PredictorFormat(); uri == "" && custom == nil {
			if err := c.writeModelsConfig(isvc.Metadata.Namespace, isvc.Metadata.Name, groups[k]); err != nil {
				return nil, err
			}
		}
	}
	byKey := map[string]*router.Service{}
	for _, s := range services {
		byKey[s.Namespace+"/"+s.Name] = s
	}
	for k, tms := range groups {
		var parent api.InferenceService
		raw, err := c.cfg.Store.Get(KindInferenceService, k)
		parentFound := err == nil && json.Unmarshal(raw, &parent) == nil
		for _, tm := range tms {
			aliases[k] = append(aliases[k], tm.Metadata.Name)
			c.updateTrainedModelStatus(ctx, tm, parentFound, &parent, byKey[k])
		}
	}
	return aliases, nil
}

func (c *Controller) updateTrainedModelStatus(ctx context.Context, tm *api.TrainedModel, parentFound bool, parent *api.InferenceService, svc *router.Service) {
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
		if loaded, why := c.modelLoaded(ctx, svc, tm.Metadata.Name); loaded {
			ready = api.Condition{Type: "Ready", Status: "True"}
		} else {
			ready = api.Condition{Type: "Ready", Status: "False", Reason: "ModelNotLoaded", Message: why}
		}
	}
	var old []api.Condition
	if tm.Status != nil {
		old = tm.Status.Conditions
	}
	st.Conditions = carryTransitions(old, []api.Condition{parentReady, ready})
	if tm.Status != nil && string(mustJSON(tm.Status)) == string(mustJSON(st)) {
		return
	}
	tm.Status = st
	k := tm.Metadata.Namespace + "/" + tm.Metadata.Name
	if err := c.cfg.Store.Put(KindTrainedModel, k, mustJSON(tm)); err != nil {
		c.cfg.Logger.Error("trainedmodel status", "model", k, "err", err)
	}
}

// modelLoaded asks a ready predictor replica whether the model is ready.
func (c *Controller) modelLoaded(ctx context.Context, svc *router.Service, model string) (bool, string) {
	if svc == nil || svc.Components[router.Predictor] == nil {
		return false, "the InferenceService has no routed predictor"
	}
	for _, t := range svc.Components[router.Predictor].Targets {
		for _, be := range t.Backends {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			req, _ := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+be+"/v2/models/"+model+"/ready", nil)
			resp, err := http.DefaultClient.Do(req)
			cancel()
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false, fmt.Sprintf("replica %s: model not ready (%d)", be, resp.StatusCode)
			}
		}
		if len(t.Backends) > 0 {
			return true, ""
		}
	}
	return false, "no ready predictor replica"
}
