package controlplane

import (
	"encoding/json"
	"fmt"

	"github.com/ferryserve/ferry/internal/api"
)

// The hooks below let the rollout runner (internal/rollout), which sits
// beside the controller, read services and record events; it changes
// services only through Apply, as `ferry apply` does.

// Event records an event on a service, shown by `ferry describe`.
func (c *Controller) Event(namespace, name, typ, reason, message string) {
	c.event(namespace+"/"+name, typ, reason, message)
}

// InferenceServices returns every stored InferenceService, with status.
func (c *Controller) InferenceServices() ([]*api.InferenceService, error) {
	_, vals, err := c.cfg.Store.List(KindInferenceService, "")
	if err != nil {
		return nil, fmt.Errorf("list inferenceservices: %w", err)
	}
	out := make([]*api.InferenceService, 0, len(vals))
	for _, v := range vals {
		var isvc api.InferenceService
		if err := json.Unmarshal(v, &isvc); err != nil {
			return nil, fmt.Errorf("decode stored inferenceservice: %w", err)
		}
		out = append(out, &isvc)
	}
	return out, nil
}

// InferenceService returns one stored InferenceService, or an error
// wrapping ErrNotFound.
func (c *Controller) InferenceService(namespace, name string) (*api.InferenceService, error) {
	v, err := c.cfg.Store.Get(KindInferenceService, namespace+"/"+name)
	if err != nil {
		return nil, err
	}
	var isvc api.InferenceService
	if err := json.Unmarshal(v, &isvc); err != nil {
		return nil, fmt.Errorf("decode stored inferenceservice %s/%s: %w", namespace, name, err)
	}
	return &isvc, nil
}
