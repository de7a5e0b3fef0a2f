package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/graph"
	"github.com/ferryserve/ferry/internal/plan"
)

// graphsKey is the queue key of the InferenceGraph pass: every graph is
// compiled against the stored services, published to the router, and
// given its status. One pass for all graphs, because any service's apply
// or delete can change any graph's readiness, and a pass does no I/O
// beyond the store.
const graphsKey = "\x00inferencegraphs"

// Graph status reasons.
const (
	reasonServiceNotFound = "ServiceNotFound"
	reasonInvalidGraph    = "InvalidGraph"
)

// syncGraphs compiles every stored graph, publishes those that compile to
// the router (as one table, replacing the last) and writes each graph's
// Ready condition.
func (c *Controller) syncGraphs(ctx context.Context) error {
	defer c.lockKey(graphsKey)()
	_, raws, err := c.cfg.Store.List(KindInferenceGraph, "")
	if err != nil {
		return fmt.Errorf("list graphs: %w", err)
	}
	services, err := c.storedServices()
	if err != nil {
		return err
	}
	exec := graph.NewExecutor(graph.Config{Caller: c.cfg.Router, Logger: c.cfg.Logger})
	handlers := make(map[string]http.Handler, len(raws))
	type pending struct {
		key  string
		ig   *api.InferenceGraph
		cond api.Condition
	}
	statuses := make([]pending, 0, len(raws))
	for _, raw := range raws {
		var ig api.InferenceGraph
		if err := json.Unmarshal(raw, &ig); err != nil {
			c.cfg.Logger.Error("stored graph cannot be decoded; skipping it", "err", err)
			continue
		}
		key := ig.Metadata.Namespace + "/" + ig.Metadata.Name
		g, cerr := graph.Compile(&ig, c.graphResolver(ig.Metadata.Namespace, services))
		cond := api.Condition{Type: "Ready", Status: "True"}
		if cerr != nil {
			cond.Status, cond.Reason, cond.Message = "False", reasonInvalidGraph, cerr.Error()
			if errors.Is(cerr, graph.ErrServiceNotFound) {
				cond.Reason = reasonServiceNotFound
			}
		} else {
			handlers[key] = exec.Handler(g)
		}
		statuses = append(statuses, pending{key, &ig, cond})
	}
	// Routes first, status after: a client that reads Ready can call the
	// graph, and one that reads not Ready no longer reaches it.
	c.cfg.Router.SetGraphs(handlers)
	var errs []error
	for _, p := range statuses {
		if err := c.saveGraphStatus(p.key, p.ig, p.cond); err != nil {
			errs = append(errs, fmt.Errorf("graph %s: %w", p.key, err))
		}
	}
	return errors.Join(errs...)
}

// storedServices returns the stored InferenceServices by namespace/name.
func (c *Controller) storedServices() (map[string]*api.InferenceService, error) {
	keys, raws, err := c.cfg.Store.List(KindInferenceService, "")
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := make(map[string]*api.InferenceService, len(keys))
	for i, k := range keys {
		var s api.InferenceService
		if json.Unmarshal(raws[i], &s) == nil {
			out[k] = &s
		}
	}
	return out, nil
}

// graphResolver maps a step to the service it calls: serviceName in the
// graph's namespace, or a serviceUrl whose host names a service
// ({name}.{namespace}.{domain}, or Kubernetes' {name}.{namespace}.svc…).
// Other URLs are refused: the ingress calls only the services it routes.
func (c *Controller) graphResolver(ns string, services map[string]*api.InferenceService) graph.Resolver {
	return func(s api.InferenceStep) (graph.Target, error) {
		name, svcNS, path := s.ServiceName, ns, ""
		if name == "" {
			u, err := url.Parse(s.ServiceURL)
			if err != nil {
				return graph.Target{}, fmt.Errorf("serviceUrl %q: %w", s.ServiceURL, err)
			}
			host := strings.ToLower(u.Hostname())
			for _, suffix := range []string{"." + c.cfg.Domain, ".svc.cluster.local", ".svc"} {
				if h, ok := strings.CutSuffix(host, suffix); ok {
					host = h
					break
				}
			}
			var ok bool
			name, svcNS, ok = strings.Cut(host, ".")
			if !ok || strings.Contains(svcNS, ".") {
				return graph.Target{}, fmt.Errorf("serviceUrl %q: host is not {service}.{namespace}.%s; ferry calls only the InferenceServices it serves", s.ServiceURL, c.cfg.Domain)
			}
			if u.Path != "" && u.Path != "/" {
				path = u.Path
			}
		}
		isvc := services[svcNS+"/"+name]
		if isvc == nil {
			return graph.Target{}, fmt.Errorf("%w: no InferenceService %q in namespace %s", graph.ErrServiceNotFound, name, svcNS)
		}
		if path == "" {
			path = plan.PredictPath(isvc)
		}
		return graph.Target{Namespace: svcNS, Service: name, Path: path}, nil
	}
}

// saveGraphStatus writes a graph's status when it changed, in one store
// transaction that keeps whatever spec is stored now (a concurrent apply
// wins; its own pass follows).
func (c *Controller) saveGraphStatus(key string, ig *api.InferenceGraph, ready api.Condition) error {
	st := &api.InferenceGraphStatus{
		ObservedGeneration: ig.Metadata.Generation,
		URL:                fmt.Sprintf("http://%s.%s.%s", ig.Metadata.Name, ig.Metadata.Namespace, c.cfg.Domain),
		DeploymentMode:     "Ferry",
		Conditions:         []api.Condition{ready},
	}
	if old := ig.Status; old != nil {
		for _, oc := range old.Conditions {
			if oc.Type == ready.Type && oc.Status == ready.Status {
				st.Conditions[0].LastTransitionTime = oc.LastTransitionTime
			}
		}
		if reflect.DeepEqual(old, st) {
			return nil
		}
	}
	if st.Conditions[0].LastTransitionTime.IsZero() {
		st.Conditions[0].LastTransitionTime = time.Now().UTC().Truncate(time.Second)
	}
	return c.cfg.Store.Modify(KindInferenceGraph, key, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, nil // deleted meanwhile
		}
		var cur api.InferenceGraph
		if err := json.Unmarshal(old, &cur); err != nil {
			return nil, err
		}
		if cur.Metadata.Generation != ig.Metadata.Generation {
			return nil, nil // re-applied meanwhile: its own pass writes its status
		}
		cur.Status = st
		return json.Marshal(&cur)
	})
}
