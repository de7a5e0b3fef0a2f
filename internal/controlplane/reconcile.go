package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/supervisor"
)

var componentOrder = plan.ComponentOrder

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
// with its spec: it runs what plan.Runs asks for, observes the replicas,
// and carries out plan.Service's answer. It returns the service's routes,
// the revision keys that must keep running, and a function that saves the
// status.
func (c *Controller) reconcile(ctx context.Context, isvc *api.InferenceService) (*router.Service, []string, func() error) {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	prev := isvc.Status
	if prev == nil {
		prev = &api.InferenceServiceStatus{}
	}
	in := plan.ServiceInput{Components: map[string]plan.Input{}, Previous: prev.Conditions, Now: time.Now()}
	specs := components(isvc)
	for _, comp := range componentOrder {
		if spec, ok := specs[comp]; ok {
			in.Components[comp] = c.runComponent(ctx, isvc, comp, spec, prev.Components[comp])
		}
	}
	p := plan.Service(in)
	for _, comp := range componentOrder {
		for _, e := range p.Components[comp].Events {
			c.event(ns+"/"+name, e.Type, e.Reason, e.Message)
		}
	}

	status := &api.InferenceServiceStatus{
		ObservedGeneration: isvc.Metadata.Generation,
		URL:                fmt.Sprintf("http://%s.%s.%s", name, ns, c.cfg.Domain),
		Address:            &api.Addressable{URL: c.cfg.IngressURL},
		Components:         map[string]api.ComponentStatus{},
		Conditions:         p.Conditions,
	}
	svc := &router.Service{Name: name, Namespace: ns, Components: map[string]*router.Component{}}
	if a, err := router.ParseAffinity(isvc.Metadata.Annotations); err != nil {
		c.event(ns+"/"+name, "Warning", "RoutingIgnored", err.Error()) // Apply refuses it; a stored one from before is ignored
	} else {
		svc.Affinity = a
	}
	var keep []string
	for _, comp := range componentOrder {
		spec, ok := specs[comp]
		if !ok {
			continue
		}
		out := p.Components[comp]
		cs := out.Status()
		if in.Components[comp].Error != "" {
			cs = prev.Components[comp] // revisions unreadable: keep what was reported
		} else {
			cs.URL = fmt.Sprintf("http://%s-%s.%s.%s", name, comp, ns, c.cfg.Domain)
		}
		status.Components[comp] = cs
		svc.Components[comp] = c.routeComponent(isvc, comp, spec.Extensions(), out)
		for _, r := range out.Keep {
			keep = append(keep, revKey(ns, name, comp)+r)
		}
	}
	return svc, keep, func() error { return c.saveStatus(isvc, status) }
}

// carryTransitions keeps a condition's lastTransitionTime while its status
// does not change.
func carryTransitions(old, cur []api.Condition) []api.Condition {
	return plan.Transitions(old, time.Now(), cur)
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

// runComponent makes sure the revisions plan.Runs names are running at the
// replica counts the autoscaler wants, and returns what plan needs to know
// about the component: its revisions and what the runner observes.
func (c *Controller) runComponent(ctx context.Context, isvc *api.InferenceService, comp string, spec api.Component, prev api.ComponentStatus) plan.Input {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	ext := spec.Extensions()
	in := plan.Input{Previous: prev, Observed: map[string]plan.Observed{}}
	if ext.CanaryTrafficPercent != nil {
		p := int(*ext.CanaryTrafficPercent)
		in.CanaryTrafficPercent = &p
	}
	revs, err := c.ensureRevision(ns, name, comp, spec)
	if err != nil {
		in.Error = err.Error()
		return in
	}
	byName := map[string]Revision{}
	for _, r := range revs {
		byName[r.Name] = r
		in.Revisions = append(in.Revisions, r.Name)
	}
	replicasFor := func(rn string) int {
		spec2 := scaleSpec(isvc, ext)
		spec2.Min = plan.MinReplicas(rn, in.Revisions, prev, spec2.Min)
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
	for _, rn := range plan.Runs(in.Revisions, prev) {
		rkey := revKey(ns, name, comp) + rn
		replicas := replicasFor(rn)
		if rs := c.replicaSet(rkey); rs != nil {
			if isInProcess(rs) {
				replicas = min(replicas, 1) // inprocess.go: one replica at most
			}
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
			continue
		}
		tmpl, err := c.template(ctx, isvc, comp, byName[rn])
		if err != nil {
			in.Observed[rn] = plan.Observed{Failed: err.Error()}
			c.event(ns+"/"+name, "Warning", "RevisionFailed", fmt.Sprintf("%s: %v", rn, err))
			continue
		}
		tmpl = c.withQuality(isvc, byName[rn], tmpl) // quality.go: journal predictions when the service asks
		svcKey := ns + "/" + name
		runner, where := c.cfg.Runner, ""
		if ok, why := c.inProcess(isvc, comp, byName[rn]); ok {
			runner, where, replicas = c.cfg.InProcess, " in-process", min(replicas, 1)
		} else if why != "" {
			c.event(svcKey, "Normal", "ProcessReplicas", fmt.Sprintf("%s runs as ferry serve processes, not in-process: %s", rn, why))
		}
		rs := runner.Replicas(ReplicaSpec{Service: svcKey, Revision: rn, Template: tmpl, LogDir: c.logDir(ns, name), PIDDir: c.PIDDir()},
			func() { c.queue.Add(svcKey) })
		if err := rs.Scale(replicas); err != nil {
			c.event(ns+"/"+name, "Warning", "ScaleFailed", fmt.Sprintf("%s: %v", rn, err))
			continue
		}
		c.mu.Lock()
		c.running[rkey] = rs
		c.mu.Unlock()
		c.event(ns+"/"+name, "Normal", "RevisionStarted", fmt.Sprintf("started %d replica(s) of %s%s", replicas, rn, where))
	}
	for _, rn := range in.Revisions {
		if o, ok := in.Observed[rn]; ok && o.Failed != "" {
			continue
		}
		if o, ok := c.observe(revKey(ns, name, comp) + rn); ok {
			in.Observed[rn] = o
		}
	}
	return in
}

// observe reports what the runner sees of a running revision; false: it
// is not running.
func (c *Controller) observe(rkey string) (plan.Observed, bool) {
	rs := c.replicaSet(rkey)
	if rs == nil {
		return plan.Observed{}, false
	}
	var o plan.Observed
	o.Ready = len(rs.Backends()) > 0
	c.mu.Lock()
	if o.Ready {
		c.everReady[rkey] = true
	}
	// A revision that was ready stays routable while it has no ready
	// replica (scaled to zero, or scaling up from zero): the activator
	// holds its requests until a replica is ready.
	o.Idle = !o.Ready && c.everReady[rkey]
	c.mu.Unlock()
	if !o.Ready {
		logs := rs.Logs(1)
		for _, st := range rs.Status() {
			if st.LastExit != "" {
				o.Waiting = fmt.Sprintf("replica %s: %s (restarts: %d)", st.Name, st.LastExit, st.Restarts)
				if l := logs[st.Name]; len(l) > 0 {
					o.Waiting += "; last log line: " + truncate(l[len(l)-1], 400)
				}
			}
		}
	}
	return o, true
}

// routeComponent is the router's view of a planned component: its traffic
// with the ready replicas' addresses.
func (c *Controller) routeComponent(isvc *api.InferenceService, comp string, ext *api.ComponentExtensionSpec, out plan.Output) *router.Component {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	rc := &router.Component{}
	if ext.TimeoutSeconds != nil && *ext.TimeoutSeconds > 0 {
		rc.Timeout = time.Duration(*ext.TimeoutSeconds) * time.Second
	}
	if ext.Logger != nil && ext.Logger.URL != "" && !servesItself(isvc, comp) {
		mw, id, err := c.ingressLogger(ns, name, comp, ext.Logger)
		if err != nil {
			c.event(ns+"/"+name, "Warning", "LoggerFailed", fmt.Sprintf("%s: %v", comp, err))
		}
		rc.Middleware, rc.MiddlewareID = mw, id
	}
	cc := 0
	if ext.ContainerConcurrency != nil {
		cc = int(*ext.ContainerConcurrency)
	}
	for _, t := range out.Traffic {
		var bs, gbs []string
		if rs := c.replicaSet(revKey(ns, name, comp) + t.Revision); rs != nil {
			bs, gbs = rs.Backends(), rs.GRPCBackends()
		}
		rc.Targets = append(rc.Targets, router.Target{Revision: t.Revision, Tag: t.Tag, Percent: t.Percent, Latest: t.Latest, Backends: bs, GRPCBackends: gbs, Concurrency: cc})
	}
	return rc
}

func int64Ptr(v int64) *int64 { return &v }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
func boolPtr(v bool) *bool { return &v }

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
		if !builtin.Has(format) {
			return nil, fmt.Errorf("predictor %q runs in its own server: give the container a command (ferry up runs processes, not images), or use a built-in format (%s)", format, strings.Join(builtin.Names(), ", "))
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
		id := replicaID()
		args := append([]string{"serve", "--model-format", format, "--host", "127.0.0.1", "--http-port", strconv.Itoa(hp), "--grpc-port", strconv.Itoa(gp),
			"--log-format", "json", "--inference-service", name, "--namespace", ns, "--component", comp, "--endpoint", "default", "--replica-id", id},
			c.cfg.ServeArgs...)
		if sock := c.httpSocket(hp); sock != "" {
			args = append(args, "--http-socket", sock)
		}
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
			Readiness: &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: hp, Header: server.HeaderReplicaID, Value: id}, Period: 2 * time.Second, FailureThreshold: 3},
			Liveness:  &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/live", Port: hp, Header: server.HeaderReplicaID, Value: id}, InitialDelay: 5 * time.Second, Period: 10 * time.Second, FailureThreshold: 3},
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
	return custom == nil && builtin.Has(format)
}

// replicaID is a fresh identity for one replica of a ferry serve child,
// which its probes expect back (server.HeaderReplicaID).
func replicaID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
