package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/supervisor"
)

var componentOrder = []string{api.ComponentPredictor, api.ComponentTransformer, api.ComponentExplainer}

func components(isvc *api.InferenceService) map[string]api.Component {
	out := map[string]api.Component{api.ComponentPredictor: &isvc.Spec.Predictor}
	if isvc.Spec.Transformer != nil {
		out[api.ComponentTransformer] = isvc.Spec.Transformer
	}
	if isvc.Spec.Explainer != nil {
		out[api.ComponentExplainer] = isvc.Spec.Explainer
	}
	return out
}

// reconcile brings one service's revisions, replicas and status in line
// with its spec. It returns the service's routes and the revision keys that
// must keep running.
func (c *Controller) reconcile(ctx context.Context, isvc *api.InferenceService) (*router.Service, []string, func() error) {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	prev := isvc.Status
	if prev == nil {
		prev = &api.InferenceServiceStatus{}
	}
	status := &api.InferenceServiceStatus{
		ObservedGeneration: isvc.Metadata.Generation,
		URL:                fmt.Sprintf("http://%s.%s.%s", name, ns, c.cfg.Domain),
		Address:            &api.Addressable{URL: c.cfg.IngressURL},
		Components:         map[string]api.ComponentStatus{},
	}
	svc := &router.Service{Name: name, Namespace: ns, Components: map[string]*router.Component{}}
	var keep []string
	var conds []api.Condition
	allReady := true
	specs := components(isvc)
	for _, comp := range componentOrder {
		spec, ok := specs[comp]
		if !ok {
			continue
		}
		cs, rc, k, cond := c.reconcileComponent(ctx, isvc, comp, spec, prev.Components[comp])
		status.Components[comp] = cs
		svc.Components[comp] = rc
		keep = append(keep, k...)
		conds = append(conds, cond)
		allReady = allReady && cond.Status == "True"
	}
	ingress := api.Condition{Type: "IngressReady", Status: "True"}
	if len(svc.Components[api.ComponentPredictor].Targets) == 0 {
		ingress = api.Condition{Type: "IngressReady", Status: "False", Reason: "NoReadyRevision", Message: "the predictor has no ready revision to route to"}
		allReady = false
	}
	conds = append(conds, ingress)
	ready := api.Condition{Type: "Ready", Status: "True"}
	if !allReady {
		ready = api.Condition{Type: "Ready", Status: "False", Reason: "ComponentsNotReady", Message: "one or more components are not ready"}
	}
	conds = append(conds, ready)
	status.Conditions = carryTransitions(prev.Conditions, conds)
	return svc, keep, func() error { return c.saveStatus(isvc, status) }
}

// carryTransitions keeps a condition's lastTransitionTime while its status
// does not change.
func carryTransitions(old, cur []api.Condition) []api.Condition {
	now := time.Now().UTC().Truncate(time.Second)
	for i := range cur {
		cur[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == cur[i].Type && o.Status == cur[i].Status {
				cur[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return cur
}

func (c *Controller) saveStatus(isvc *api.InferenceService, st *api.InferenceServiceStatus) error {
	b, _ := json.Marshal(st)
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	k := isvc.Metadata.Namespace + "/" + isvc.Metadata.Name
	c.mu.Lock()
	same := c.lastHash[k] == sum
	c.lastHash[k] = sum
	c.mu.Unlock()
	if same {
		return nil
	}
	// Read, check and write in one transaction, so an apply that lands
	// meanwhile (a user, the rollout runner) is never overwritten.
	wrote := false
	err := c.cfg.Store.Modify(KindInferenceService, k, func(raw []byte) ([]byte, error) {
		wrote = false
		if raw == nil {
			return nil, nil // deleted meanwhile
		}
		var cur api.InferenceService
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, err
		}
		if cur.Metadata.Generation != isvc.Metadata.Generation {
			return nil, nil // the next reconcile handles the new spec
		}
		cur.Status = st
		wrote = true
		return json.Marshal(&cur)
	})
	if err != nil || !wrote {
		c.mu.Lock()
		delete(c.lastHash, k) // not written: do not skip the next one
		c.mu.Unlock()
		return err
	}
	if c.statusHook != nil {
		c.statusHook(k, st)
	}
	return nil
}

func (c *Controller) reconcileComponent(ctx context.Context, isvc *api.InferenceService, comp string, spec api.Component, prev api.ComponentStatus) (api.ComponentStatus, *router.Component, []string, api.Condition) {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	condType := strings.ToUpper(comp[:1]) + comp[1:] + "Ready"
	ext := spec.Extensions()
	rc := &router.Component{}
	if ext.TimeoutSeconds != nil && *ext.TimeoutSeconds > 0 {
		rc.Timeout = time.Duration(*ext.TimeoutSeconds) * time.Second
	}
	if ext.Logger != nil && ext.Logger.URL != "" && !servesItself(isvc, comp) {
		mw, err := c.ingressLogger(ns, name, comp, ext.Logger)
		if err != nil {
			c.event(ns+"/"+name, "Warning", "LoggerFailed", fmt.Sprintf("%s: %v", comp, err))
		}
		rc.Middleware = mw
	}
	revs, err := c.ensureRevision(ns, name, comp, spec)
	if err != nil || len(revs) == 0 {
		return prev, rc, nil, api.Condition{Type: condType, Status: "False", Reason: "RevisionFailed", Message: fmt.Sprint(err)}
	}
	latest := revs[len(revs)-1]
	byName := map[string]Revision{}
	for _, r := range revs {
		byName[r.Name] = r
	}
	spec2 := scaleSpec(isvc, ext)
	replicasFor := func(rn string) int {
		if c.cfg.Autoscaler == nil {
			return max(spec2.Min, 1)
		}
		initial := max(spec2.Min, 1)
		wasReady := rn == prev.LatestReadyRevision || rn == prev.LatestRolledoutRevision || rn == prev.PreviousRolledoutRevision
		if r, ok := byName[rn]; ok && spec2.Min == 0 && wasReady && r.Created.Before(c.startedAt) {
			// Ready before this ferry up started: stay at zero, routable
			// through the activator, until a request comes.
			initial = 0
			c.mu.Lock()
			c.everReady[revKey(ns, name, comp)+rn] = true
			c.mu.Unlock()
		}
		return c.cfg.Autoscaler.DesiredFrom(ns, rn, spec2, initial)
	}

	// Revisions that must run: the latest, and those the rollout may route to.
	want := []string{latest.Name}
	for _, r := range []string{prev.LatestReadyRevision, prev.LatestRolledoutRevision, prev.PreviousRolledoutRevision} {
		if r != "" && !slices.Contains(want, r) {
			if _, ok := byName[r]; ok {
				want = append(want, r)
			}
		}
	}
	var failure string
	for _, rn := range want {
		rkey := revKey(ns, name, comp) + rn
		replicas := replicasFor(rn)
		if rs := c.replicaSet(rkey); rs != nil {
			before := len(rs.Status())
			if err := rs.Scale(replicas); err != nil {
				c.event(ns+"/"+name, "Warning", "ScaleFailed", fmt.Sprintf("%s: %v", rn, err))
			} else if replicas != before {
				reason := "Scaled"
				if replicas == 0 {
					reason = "ScaledToZero"
				}
				c.event(ns+"/"+name, "Normal", reason, fmt.Sprintf("%s: %d → %d replicas", rn, before, replicas))
			}
			if len(rs.Backends()) > 0 {
				c.mu.Lock()
				c.everReady[rkey] = true
				c.mu.Unlock()
			}
			continue
		}
		tmpl, err := c.template(ctx, isvc, comp, byName[rn])
		if err != nil {
			if rn == latest.Name {
				failure = err.Error()
			}
			c.event(ns+"/"+name, "Warning", "RevisionFailed", fmt.Sprintf("%s: %v", rn, err))
			continue
		}
		svcKey := ns + "/" + name
		rs := c.cfg.Runner.Replicas(ReplicaSpec{Service: svcKey, Revision: rn, Template: tmpl, LogDir: c.logDir(ns, name), PIDDir: c.PIDDir()},
			func() { c.queue.Add(svcKey) })
		if err := rs.Scale(replicas); err != nil {
			c.event(ns+"/"+name, "Warning", "ScaleFailed", fmt.Sprintf("%s: %v", rn, err))
			continue
		}
		c.mu.Lock()
		c.running[rkey] = rs
		c.mu.Unlock()
		c.event(ns+"/"+name, "Normal", "RevisionStarted", fmt.Sprintf("started %d replica(s) of %s", replicas, rn))
	}

	backends := func(rn string) []string {
		if rs := c.replicaSet(revKey(ns, name, comp) + rn); rs != nil {
			return rs.Backends()
		}
		return nil
	}
	rollout := Rollout{
		LatestCreated:     latest.Name,
		LatestRolledout:   prev.LatestRolledoutRevision,
		PreviousRolledout: prev.PreviousRolledoutRevision,
	}
	// A revision that was ready stays routable while it has no ready
	// replica (scaled to zero, or scaling up from zero): the activator
	// holds its requests until a replica is ready.
	scaledToZero := func(rn string) bool {
		rkey := revKey(ns, name, comp) + rn
		c.mu.Lock()
		ever := c.everReady[rkey]
		c.mu.Unlock()
		return ever && c.replicaSet(rkey) != nil
	}
	for i := len(revs) - 1; i >= 0; i-- {
		if len(backends(revs[i].Name)) > 0 || scaledToZero(revs[i].Name) {
			rollout.LatestReady = revs[i].Name
			break
		}
	}
	var canary *int
	if ext.CanaryTrafficPercent != nil {
		p := int(*ext.CanaryTrafficPercent)
		canary = &p
	}
	traffic := Traffic(rollout, canary)
	rollout.Observe(traffic)
	if prev.LatestRolledoutRevision != "" && rollout.LatestRolledout != prev.LatestRolledoutRevision {
		c.event(ns+"/"+name, "Normal", "Promoted", fmt.Sprintf("%s: %s takes the traffic (was %s)", comp, rollout.LatestRolledout, prev.LatestRolledoutRevision))
	}
	// A rollback (canaryTrafficPercent 0) pins all traffic on the previous
	// revision while the latest keeps a 0 % entry.
	pinned := func(ts []string) bool { return len(ts) == 2 && ts[0] == "0" }
	var was, now []string
	for _, t := range prev.Traffic {
		if t.Percent != nil {
			was = append(was, strconv.FormatInt(*t.Percent, 10))
		}
	}
	for _, t := range traffic {
		now = append(now, strconv.Itoa(t.Percent))
	}
	if pinned(now) && !pinned(was) {
		c.event(ns+"/"+name, "Warning", "RolledBack", fmt.Sprintf("%s: all traffic back on %s (canaryTrafficPercent 0); %s keeps 0 %%", comp, traffic[1].Revision, traffic[0].Revision))
	}

	cs := api.ComponentStatus{
		LatestCreatedRevision:     rollout.LatestCreated,
		LatestReadyRevision:       rollout.LatestReady,
		LatestRolledoutRevision:   rollout.LatestRolledout,
		PreviousRolledoutRevision: rollout.PreviousRolledout,
		URL:                       fmt.Sprintf("http://%s-%s.%s.%s", name, comp, ns, c.cfg.Domain),
	}
	keep := []string{revKey(ns, name, comp) + latest.Name}
	for _, r := range []string{rollout.LatestReady, rollout.LatestRolledout, rollout.PreviousRolledout} {
		if r != "" {
			keep = append(keep, revKey(ns, name, comp)+r)
		}
	}
	readyAll := len(traffic) > 0
	// As Knative and KServe report it: the component is ready only when
	// its latest created revision is (a new revision that is starting or
	// crash-looping makes it not ready, while the old one keeps serving).
	latestReady := rollout.LatestReady == latest.Name
	for _, t := range traffic {
		bs := backends(t.Revision)
		var gbs []string
		if rs := c.replicaSet(revKey(ns, name, comp) + t.Revision); rs != nil {
			gbs = rs.GRPCBackends()
		}
		cc := 0
		if ext.ContainerConcurrency != nil {
			cc = int(*ext.ContainerConcurrency)
		}
		rc.Targets = append(rc.Targets, router.Target{Revision: t.Revision, Tag: t.Tag, Percent: t.Percent, Latest: t.Latest, Backends: bs, GRPCBackends: gbs, Concurrency: cc})
		cs.Traffic = append(cs.Traffic, api.TrafficTarget{RevisionName: t.Revision, Tag: t.Tag, Percent: int64Ptr(int64(t.Percent)), LatestRevision: boolPtr(t.Latest)})
		if t.Percent > 0 && len(bs) == 0 && !scaledToZero(t.Revision) {
			readyAll = false
		}
	}
	cond := api.Condition{Type: condType, Status: "True"}
	switch {
	case failure != "":
		cond = api.Condition{Type: condType, Status: "False", Reason: "RevisionFailed", Message: failure}
	case !readyAll || !latestReady:
		msg := "waiting for a replica of " + latest.Name + " to become ready"
		if rs := c.replicaSet(revKey(ns, name, comp) + latest.Name); rs != nil {
			logs := rs.Logs(1)
			for _, st := range rs.Status() {
				if st.LastExit != "" {
					msg = fmt.Sprintf("replica %s: %s (restarts: %d)", st.Name, st.LastExit, st.Restarts)
					if l := logs[st.Name]; len(l) > 0 {
						msg += "; last log line: " + truncate(l[len(l)-1], 400)
					}
				}
			}
		}
		cond = api.Condition{Type: condType, Status: "False", Reason: "RevisionNotReady", Message: msg}
	}
	return cs, rc, keep, cond
}

func int64Ptr(v int64) *int64 { return &v }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
func boolPtr(v bool) *bool { return &v }

// builtinFormats are served by `ferry serve` itself.
var builtinFormats = []string{"sklearn", "xgboost", "lightgbm", "pmml", "onnx"}

// template turns a revision into the process that serves it.
func (c *Controller) template(ctx context.Context, isvc *api.InferenceService, comp string, rev Revision) (ProcessTemplate, error) {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	switch comp {
	case api.ComponentPredictor:
		var p api.PredictorSpec
		if err := json.Unmarshal(rev.Spec, &p); err != nil {
			return nil, err
		}
		tmp := api.InferenceService{Spec: api.InferenceServiceSpec{Predictor: p}}
		format, uri, _, custom := tmp.PredictorFormat()
		if custom != nil {
			return c.containerTemplate(isvc, comp, custom, p.Extensions())
		}
		if !slices.Contains(builtinFormats, format) {
			return nil, fmt.Errorf("predictor %q runs in its own server: give the container a command (ferry up runs processes, not images), or use a built-in format (%s)", format, strings.Join(builtinFormats, ", "))
		}
		// storage: {key, path, parameters} resolves through the storage
		// config (KServe's storage-config secret) to a URI and credentials.
		var storageEnv []string
		for base, ref := range tmp.StorageSpecs() {
			if ref.Component != api.ComponentPredictor {
				continue
			}
			target, err := c.cfg.StorageConfig.Resolve(base, ref.Spec, ref.StorageURI)
			if err != nil {
				return nil, err
			}
			uri, storageEnv = target.URI, target.Env()
		}
		if uri == "" {
			// Multi-model server: its TrainedModels arrive through the
			// models config its replicas watch.
			return c.serveTemplate(ns, name, comp, "", format, p.Extensions(), nil), nil
		}
		// The replica pulls its own model (ferry serve --model-uri): a slow
		// or failing pull delays only this revision, never a reconcile, and
		// readiness covers the download.
		return c.serveTemplate(ns, name, comp, uri, format, p.Extensions(), storageEnv), nil
	case api.ComponentTransformer, api.ComponentExplainer:
		var ps api.PodSpec
		var ext *api.ComponentExtensionSpec
		if comp == api.ComponentTransformer {
			var t api.TransformerSpec
			if err := json.Unmarshal(rev.Spec, &t); err != nil {
				return nil, err
			}
			ps, ext = t.PodSpec, t.Extensions()
		} else {
			var e api.ExplainerSpec
			if err := json.Unmarshal(rev.Spec, &e); err != nil {
				return nil, err
			}
			if e.Alibi != nil || e.AIX != nil || e.ART != nil {
				return c.builtinExplainerTemplate(isvc, &e)
			}
			ps, ext = e.PodSpec, e.Extensions()
		}
		if len(ps.Containers) == 0 {
			return nil, fmt.Errorf("%s has no container", comp)
		}
		return c.containerTemplate(isvc, comp, &ps.Containers[0], ext)
	}
	return nil, fmt.Errorf("unknown component %q", comp)
}

func (c *Controller) serveTemplate(ns, name, comp, uri, format string, ext *api.ComponentExtensionSpec, env []string) ProcessTemplate {
	return func(hp, gp int) supervisor.Config {
		args := append([]string{"serve", "--model-format", format, "--host", "127.0.0.1", "--http-port", strconv.Itoa(hp), "--grpc-port", strconv.Itoa(gp),
			"--log-format", "json", "--inference-service", name, "--namespace", ns, "--component", comp, "--endpoint", "default"},
			c.cfg.ServeArgs...)
		if uri != "" {
			args = append(args, "--model-uri", uri, "--model-name", name)
		} else {
			cfgPath := c.modelsConfigPath(ns, name)
			args = append(args, "--models-config", cfgPath, "--puller-state-dir", fmt.Sprintf("%s.state-%d", cfgPath, hp))
		}
		if l := ext.Logger; l != nil && l.URL != "" {
			args = append(args, "--log-url", l.URL, "--log-mode", l.Mode, "--log-spool-dir", fmt.Sprintf("%s/spool/%s-%s-%d", c.cfg.DataDir, ns, name, hp))
			if len(l.MetadataHeaders) > 0 {
				args = append(args, "--log-metadata-headers", strings.Join(l.MetadataHeaders, ","))
			}
		}
		if b := ext.Batcher; b != nil {
			args = append(args, "--enable-batcher")
			if b.MaxBatchSize != nil {
				args = append(args, "--max-batchsize", strconv.Itoa(*b.MaxBatchSize))
			}
			if b.MaxLatency != nil {
				args = append(args, "--max-latency", strconv.Itoa(*b.MaxLatency)+"ms")
			}
		}
		return supervisor.Config{
			Command: c.cfg.FerryBinary,
			Args:    args,
			// The service's own storage credentials come last and win.
			Env:       append(slices.Clone(c.cfg.ReplicaEnv), env...),
			Readiness: &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: hp}, Period: 2 * time.Second, FailureThreshold: 3},
			Liveness:  &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/live", Port: hp}, InitialDelay: 5 * time.Second, Period: 10 * time.Second, FailureThreshold: 3},
			// A replica whose model was unloaded (or failed) after it was
			// ready stops being routed at once and is restarted, which
			// reloads its model.
			RestartAfterNotReady: 10 * time.Second,
		}
	}
}

// containerTemplate runs a container's command as a process. As KServe's
// controller does for transformers and explainers, it appends --model_name,
// --predictor_host and --http_port; every container gets PORT, HTTP_PORT
// and GRPC_PORT in its environment.
func (c *Controller) containerTemplate(isvc *api.InferenceService, comp string, ctr *api.Container, ext *api.ComponentExtensionSpec) (ProcessTemplate, error) {
	if len(ctr.Command) == 0 {
		if ctr.Image != "" {
			return nil, fmt.Errorf("container %q names only an image (%s): ferry up runs processes and no container engine is used; add command (and args) to run it here, or deploy with the Kubernetes operator", ctr.Name, ctr.Image)
		}
		return nil, fmt.Errorf("container %q has no command", ctr.Name)
	}
	declared := map[int]bool{8080: true}
	for _, p := range ctr.Ports {
		declared[int(p.ContainerPort)] = true
	}
	return func(hp, gp int) supervisor.Config {
		args := append(slices.Clone(ctr.Command[1:]), ctr.Args...)
		if comp != api.ComponentPredictor {
			args = append(args, "--model_name", isvc.Metadata.Name, "--predictor_host", c.cfg.PredictorAddr, "--http_port", strconv.Itoa(hp))
		}
		env := []string{"PORT=" + strconv.Itoa(hp), "HTTP_PORT=" + strconv.Itoa(hp), "GRPC_PORT=" + strconv.Itoa(gp),
			"K_SERVICE=" + isvc.Metadata.Name + "-" + comp, "PREDICTOR_HOST=" + c.cfg.PredictorAddr}
		for _, e := range ctr.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		cfg := supervisor.Config{Command: ctr.Command[0], Args: args, Env: env, Dir: ctr.WorkingDir}
		cfg.Readiness = probe(ctr.ReadinessProbe, declared, hp)
		if cfg.Readiness == nil {
			cfg.Readiness = &supervisor.Probe{TCP: &supervisor.TCPAction{Port: hp}, Period: 2 * time.Second}
		}
		cfg.Liveness = probe(ctr.LivenessProbe, declared, hp)
		return cfg
	}, nil
}

// probe maps a Kubernetes probe to a supervisor probe; ports the container
// declared (or 8080) become the replica's assigned HTTP port.
func probe(p *api.Probe, declared map[int]bool, hp int) *supervisor.Probe {
	if p == nil {
		return nil
	}
	port := func(v api.IntOrString) int {
		n := int(v.Int)
		if v.IsString || n == 0 || declared[n] {
			return hp // a named port is the container's declared one
		}
		return n
	}
	out := &supervisor.Probe{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           time.Duration(p.PeriodSeconds) * time.Second,
		Timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	switch {
	case p.HTTPGet != nil:
		out.HTTPGet = &supervisor.HTTPGetAction{Path: p.HTTPGet.Path, Port: port(p.HTTPGet.Port)}
	case p.TCPSocket != nil:
		out.TCP = &supervisor.TCPAction{Port: port(p.TCPSocket.Port)}
	case p.Exec != nil:
		out.Exec = p.Exec.Command
	case p.GRPC != nil:
		out.TCP = &supervisor.TCPAction{Port: hp}
	default:
		return nil
	}
	return out
}

// scaleSpec reads a component's autoscaling settings: minReplicas,
// maxReplicas, scaleMetric and scaleTarget, or the Knative annotations
// autoscaling.knative.dev/metric and /target on the InferenceService.
func scaleSpec(isvc *api.InferenceService, ext *api.ComponentExtensionSpec) ScaleSpec {
	s := ScaleSpec{Min: 1, Max: int(ext.MaxReplicas), Metric: ext.ScaleMetric}
	if ext.MinReplicas != nil {
		s.Min = int(*ext.MinReplicas)
	}
	if ext.ScaleTarget != nil {
		s.Target = float64(*ext.ScaleTarget)
	}
	ann := isvc.Metadata.Annotations
	if v, ok := ann["autoscaling.knative.dev/metric"]; ok && s.Metric == "" {
		s.Metric = v
	}
	if v, ok := ann["autoscaling.knative.dev/target"]; ok && s.Target == 0 {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
			s.Target = f
		}
	}
	if s.Metric != "rps" {
		s.Metric = "concurrency"
	}
	return s
}

// servesItself reports whether a component runs as ferry serve, which logs
// and batches inside its replicas; other components get the ingress's
// logger.
func servesItself(isvc *api.InferenceService, comp string) bool {
	if comp != api.ComponentPredictor {
		return false
	}
	format, _, _, custom := isvc.PredictorFormat()
	return custom == nil && slices.Contains(builtinFormats, format)
}
