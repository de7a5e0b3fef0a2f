package controlplane

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/router"
)

// APIServer is the management API of `ferry up`, which the CLI talks to
// (its wire types and Go client are in package mgmt):
//
//	POST   /api/v1/apply                                              YAML or JSON, one or more documents
//	GET    /api/v1/inferenceservices[?namespace=NS]
//	GET    /api/v1/namespaces/{ns}/inferenceservices/{name}
//	DELETE /api/v1/namespaces/{ns}/inferenceservices/{name}
//	GET    /api/v1/namespaces/{ns}/inferenceservices/{name}/revisions
//	GET    /api/v1/namespaces/{ns}/inferenceservices/{name}/events
//	GET    /api/v1/namespaces/{ns}/inferenceservices/{name}/replicas
//	GET    /api/v1/namespaces/{ns}/inferenceservices/{name}/models     each ready predictor replica's repository index
//	GET    /api/v1/namespaces/{ns}/inferenceservices/{name}/logs?component=predictor&tail=100
//	GET    /api/v1/trainedmodels[?namespace=NS]
//	DELETE /api/v1/namespaces/{ns}/trainedmodels/{name}
//	GET    /api/v1/inferencegraphs[?namespace=NS]
//	GET    /api/v1/namespaces/{ns}/inferencegraphs/{name}
//	DELETE /api/v1/namespaces/{ns}/inferencegraphs/{name}
type APIServer struct {
	ctl *Controller
}

// NewAPIServer returns the management API of ctl.
func NewAPIServer(ctl *Controller) *APIServer { return &APIServer{ctl: ctl} }

// Handler serves the API.
func (a *APIServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/apply", a.apply)
	mux.HandleFunc("GET /api/v1/inferenceservices", a.list(KindInferenceService))
	mux.HandleFunc("GET /api/v1/trainedmodels", a.list(KindTrainedModel))
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}", a.get(KindInferenceService))
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/trainedmodels/{name}", a.get(KindTrainedModel))
	mux.HandleFunc("DELETE /api/v1/namespaces/{ns}/inferenceservices/{name}", a.delete(KindInferenceService))
	mux.HandleFunc("DELETE /api/v1/namespaces/{ns}/trainedmodels/{name}", a.delete(KindTrainedModel))
	mux.HandleFunc("GET /api/v1/inferencegraphs", a.list(KindInferenceGraph))
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferencegraphs/{name}", a.get(KindInferenceGraph))
	mux.HandleFunc("DELETE /api/v1/namespaces/{ns}/inferencegraphs/{name}", a.delete(KindInferenceGraph))
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}/revisions", a.revisions)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}/events", a.events)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}/replicas", a.replicas)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}/logs", a.logs)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}/models", a.models)
	a.rolloutRoutes(mux) // rollout_api.go
	a.inferRoutes(mux)   // infer_api.go: the console's test requests
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = 500, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, mgmt.ErrorBody{Error: err.Error()})
}

func (a *APIServer) apply(w http.ResponseWriter, r *http.Request) {
	// The guard in front bounds the body (http.MaxBytesReader); crossing
	// the bound is a 413, never a silently truncated apply.
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		apiauth.TooLarge(w, tooBig.Limit, "--api-max-body")
		return
	}
	if err != nil {
		writeErr(w, 400, fmt.Errorf("read request body: %w", err))
		return
	}
	objs, err := api.Load(body)
	if err != nil {
		writeErr(w, 400, err)
		return
	}
	if len(objs) == 0 {
		writeErr(w, 400, errors.New("no InferenceService or TrainedModel in the input"))
		return
	}
	var out []mgmt.ApplyResult
	for _, o := range objs {
		res, err := a.ctl.Apply(o)
		if err != nil {
			writeErr(w, 500, err)
			return
		}
		out = append(out, res)
	}
	a.ctl.Trigger()
	writeJSON(w, 200, out)
}

// ErrConflict: a conditional write (Update) found the stored object changed
// since it was read.
var ErrConflict = errors.New("the object has been modified since it was read; read it again and retry")

// Apply stores one object: new objects get generation 1, changed specs the
// next generation (keeping their status), identical ones are unchanged.
// It writes whatever is stored (last writer wins), as `kubectl apply`
// does for a manifest without a resourceVersion.
func (c *Controller) Apply(o api.Object) (mgmt.ApplyResult, error) {
	return c.apply(o, false)
}

// Update stores o as Apply does, but only if the stored object is still
// the version o was read at (its metadata.resourceVersion, which changes
// with every spec or metadata write, not with status): a read-modify-write
// such as a rollout step then cannot undo a change that landed in between.
// It fails with ErrConflict, or ErrNotFound when the object is gone.
func (c *Controller) Update(o api.Object) (mgmt.ApplyResult, error) {
	return c.apply(o, true)
}

func (c *Controller) apply(o api.Object, conditional bool) (mgmt.ApplyResult, error) {
	md := o.Meta()
	kind := KindInferenceService
	kindName := "InferenceService"
	switch o.(type) {
	case *api.TrainedModel:
		kind, kindName = KindTrainedModel, "TrainedModel"
	case *api.InferenceGraph:
		kind, kindName = KindInferenceGraph, "InferenceGraph"
	}
	key := md.Namespace + "/" + md.Name
	res := mgmt.ApplyResult{Kind: kindName, Namespace: md.Namespace, Name: md.Name}
	if isvc, ok := o.(*api.InferenceService); ok {
		if _, err := router.ParseAffinity(md.Annotations); err != nil {
			return res, fmt.Errorf("%w: %w", api.ErrInvalid, err)
		}
		if err := checkInProcessAnnotation(*md); err != nil {
			return res, fmt.Errorf("%w: %w", api.ErrInvalid, err)
		}
		// Explainer configs are checked now, not when their replica starts.
		if err := checkExplainer(isvc); err != nil {
			return res, fmt.Errorf("%w: %w", api.ErrInvalid, err)
		}
	}
	curSpec, _, _, err := splitObject(mustJSON(o))
	if err != nil {
		return res, err
	}
	readAt := md.ResourceVersion
	// Read, compare and write in one transaction: a status the
	// reconciler writes meanwhile is kept, and a conditional write's check
	// holds until its write. The function may run more than once.
	err = c.cfg.Store.Modify(kind, key, func(old []byte) ([]byte, error) {
		if old == nil {
			if conditional {
				return nil, fmt.Errorf("%s %s: %w", kindName, key, ErrNotFound)
			}
			now := time.Now().UTC().Truncate(time.Second)
			md.CreationTimestamp = &now
			md.Generation = 1
			md.UID = newUID()
			res.Action = "created"
		} else {
			prevSpec, prevMeta, prevStatus, err := splitObject(old)
			if err != nil {
				return nil, err
			}
			if conditional && readAt != prevMeta.ResourceVersion {
				return nil, fmt.Errorf("%s %s (read at version %s, stored %s): %w", kindName, key, readAt, prevMeta.ResourceVersion, ErrConflict)
			}
			md.CreationTimestamp, md.UID, md.Generation = prevMeta.CreationTimestamp, prevMeta.UID, prevMeta.Generation
			switch {
			case string(prevSpec) != string(curSpec):
				md.Generation++
				res.Action = "configured"
			case string(mustJSON(prevMeta.Labels)) == string(mustJSON(md.Labels)) &&
				string(mustJSON(prevMeta.Annotations)) == string(mustJSON(md.Annotations)):
				md.ResourceVersion = prevMeta.ResourceVersion
				res.Action = "unchanged"
				return nil, nil
			default:
				res.Action = "configured" // metadata only: no new generation
			}
			if isvc, ok := o.(*api.InferenceService); ok && prevStatus != nil {
				_ = json.Unmarshal(prevStatus, &isvc.Status)
			}
			if ig, ok := o.(*api.InferenceGraph); ok && prevStatus != nil {
				_ = json.Unmarshal(prevStatus, &ig.Status)
			}
		}
		md.ResourceVersion = strconv.FormatInt(time.Now().UnixNano(), 10)
		return mustJSON(o), nil
	})
	if err != nil || res.Action == "unchanged" {
		return res, err
	}
	c.event(key, "Normal", "Applied", fmt.Sprintf("%s %s (generation %d)", kindName, res.Action, md.Generation))
	c.enqueueObject(kind, key)
	return res, nil
}

// checkExplainer refuses an explainer block the revision's template would
// refuse later (unknown types and config keys, TreeShap without trees,
// missing training data), naming the field.
func checkExplainer(isvc *api.InferenceService) error {
	e := isvc.Spec.Explainer
	if e == nil || e.Alibi == nil && e.AIX == nil && e.ART == nil {
		return nil
	}
	_, err := plan.Explainer(isvc, e, "")
	return err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode stored object: %v", err)) // the API types always encode
	}
	return b
}

func splitObject(b []byte) (spec json.RawMessage, meta api.ObjectMeta, status json.RawMessage, err error) {
	var o struct {
		Metadata api.ObjectMeta  `json:"metadata"`
		Spec     json.RawMessage `json:"spec"`
		Status   json.RawMessage `json:"status"`
	}
	err = json.Unmarshal(b, &o)
	return o.Spec, o.Metadata, o.Status, err
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (a *APIServer) list(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		prefix := ""
		if ns := r.URL.Query().Get("namespace"); ns != "" {
			prefix = ns + "/"
		}
		_, vals, err := a.ctl.cfg.Store.List(kind, prefix)
		if err != nil {
			writeErr(w, 500, err)
			return
		}
		items := make([]json.RawMessage, len(vals))
		for i, v := range vals {
			items[i] = v
		}
		writeJSON(w, 200, mgmt.List[json.RawMessage]{Items: items})
	}
}

func (a *APIServer) get(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := a.ctl.cfg.Store.Get(kind, r.PathValue("ns")+"/"+r.PathValue("name"))
		if errors.Is(err, ErrNotFound) {
			writeErr(w, 404, err)
			return
		}
		if err != nil {
			writeErr(w, 500, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(v)
	}
}

func (a *APIServer) delete(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("ns"), r.PathValue("name")
		if _, err := a.ctl.cfg.Store.Get(kind, ns+"/"+name); errors.Is(err, ErrNotFound) {
			writeErr(w, 404, err)
			return
		}
		if err := a.ctl.cfg.Store.Delete(kind, ns+"/"+name, false); err != nil {
			writeErr(w, 500, err)
			return
		}
		if kind == KindInferenceService {
			if err := a.ctl.cfg.Store.Delete(KindRevision, ns+"/"+name+"/", true); err != nil {
				writeErr(w, 500, err)
				return
			}
		}
		// Reconcile before answering, so the routes are gone when the
		// client hears the object is.
		if err := a.ctl.ReconcileObject(r.Context(), kind, ns+"/"+name); err != nil {
			a.ctl.cfg.Logger.Warn("reconcile after delete", "err", err)
		}
		writeJSON(w, 200, mgmt.Deleted{Deleted: ns + "/" + name})
	}
}

func (a *APIServer) revisions(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	all := mgmt.List[mgmt.Revision]{Items: []mgmt.Revision{}}
	for _, comp := range componentOrder {
		revs, err := a.ctl.revisions(ns, name, comp)
		if err != nil {
			writeErr(w, 500, err)
			return
		}
		for _, rv := range revs {
			all.Items = append(all.Items, mgmt.Revision{Name: rv.Name, Component: rv.Component, Number: rv.Number, Hash: rv.Hash, Spec: rv.Spec, Created: rv.Created})
		}
	}
	writeJSON(w, 200, all)
}

func (a *APIServer) events(w http.ResponseWriter, r *http.Request) {
	out := mgmt.List[mgmt.Event]{Items: []mgmt.Event{}}
	for _, e := range a.ctl.Events(r.PathValue("ns"), r.PathValue("name")) {
		out.Items = append(out.Items, mgmt.Event{Time: e.Time, Type: e.Type, Reason: e.Reason, Message: e.Message})
	}
	writeJSON(w, 200, out)
}

func (a *APIServer) replicas(w http.ResponseWriter, r *http.Request) {
	out := mgmt.Replicas{Revisions: map[string][]mgmt.Replica{}, Desired: map[string]int{}, Panic: map[string]bool{}}
	for rev, rs := range a.ctl.ReplicaSets(r.PathValue("ns"), r.PathValue("name")) {
		reps := []mgmt.Replica{}
		for _, st := range rs.Status() {
			reps = append(reps, mgmt.Replica{Name: st.Name, Phase: string(st.Phase), PID: st.PID, Restarts: st.Restarts,
				LastExit: st.LastExit, Since: st.Since, HTTPPort: st.HTTPPort, GRPCPort: st.GRPCPort, InProcess: st.InProcess})
		}
		out.Revisions[rev] = reps
		if a.ctl.cfg.Autoscaler != nil {
			out.Desired[rev], out.Panic[rev] = a.ctl.cfg.Autoscaler.State(r.PathValue("ns"), rev)
		}
	}
	writeJSON(w, 200, out)
}

func (a *APIServer) logs(w http.ResponseWriter, r *http.Request) {
	comp := r.URL.Query().Get("component")
	if comp == "" {
		comp = api.ComponentPredictor
	}
	tail, _ := strconv.Atoi(r.URL.Query().Get("tail"))
	if tail <= 0 {
		tail = 100
	}
	out := mgmt.Logs{Replicas: map[string][]string{}}
	for rev, rs := range a.ctl.ReplicaSets(r.PathValue("ns"), r.PathValue("name")) {
		if len(rev) < len(comp) || !containsComponent(rev, comp) {
			continue
		}
		for replica, lines := range rs.Logs(tail) {
			out.Replicas[replica] = lines
		}
	}
	writeJSON(w, 200, out)
}

// models asks each ready predictor replica (at most mgmt.ModelsMaxReplicas) for
// its repository index, as `POST /v2/repository/index` answers it: the
// models a multi-model server holds, their state and why one failed. The
// ingress does not pass the repository API through; this is read-only
// and behind the management API's token.
func (a *APIServer) models(w http.ResponseWriter, r *http.Request) {
	out := mgmt.Models{Replicas: map[string]mgmt.ModelIndex{}}
	asked := 0
	for rev, rs := range a.ctl.ReplicaSets(r.PathValue("ns"), r.PathValue("name")) {
		if !containsComponent(rev, api.ComponentPredictor) {
			continue
		}
		for _, st := range rs.Status() {
			if st.Phase != "Ready" || st.HTTPPort == 0 || asked >= mgmt.ModelsMaxReplicas {
				continue
			}
			asked++
			out.Replicas[st.Name] = mgmt.ReplicaIndex(r.Context(), http.DefaultClient, rev, "http://127.0.0.1:"+strconv.Itoa(st.HTTPPort))
		}
	}
	writeJSON(w, 200, out)
}

func containsComponent(rev, comp string) bool {
	return len(rev) > len(comp)+7 && rev[len(rev)-6-len(comp)-1:len(rev)-6] == "-"+comp
}

// ApplyYAML loads (decodes, defaults, validates) and applies every object
// in b.
func (c *Controller) ApplyYAML(b []byte) error {
	objs, err := api.Load(b)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if _, err := c.Apply(o); err != nil {
			return err
		}
	}
	c.Trigger()
	return nil
}
