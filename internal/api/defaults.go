package api

import "strings"

// Defaults KServe's mutating webhook and inferenceservice-config apply.
const (
	DefaultMinReplicas  = 1
	DefaultMaxBatchSize = 32
	DefaultMaxLatencyMS = 5000
	DefaultCPU          = "1"
	DefaultMemory       = "2Gi"
	// DefaultContainerName is the model container's name in the
	// serving.kserve.io group; KFServing (serving.kubeflow.org) used
	// LegacyContainerName.
	DefaultContainerName = "kserve-container"
	LegacyContainerName  = "kfserving-container"
	// StorageURIEnv carries a custom container's storage URI.
	StorageURIEnv = "STORAGE_URI"
	// DefaultServingPort is the port Knative gives a container that declares
	// none, and so the port a probe without one checks.
	DefaultServingPort = 8080
)

// Default implements Object. It sets the namespace, then for each component
// the container name, protocol version, resources, minReplicas, logger mode
// and batcher limits, as KServe's webhook does.
func (s *InferenceService) Default() {
	if s.Metadata.Namespace == "" {
		s.Metadata.Namespace = DefaultNamespace
	}
	name := DefaultContainerName
	if s.Group() == GroupKubeflow {
		name = LegacyContainerName
	}
	p := &s.Spec.Predictor
	if impls := p.implementations(); len(impls) == 1 {
		switch impl := impls[0]; {
		case impl.key == implModel:
			p.Model.ModelFormat.Name = canonicalFormat(p.Model.ModelFormat.Name)
			defaultFramework(p.Model.ModelFormat.Name, impl.ext, name)
		case impl.ext != nil:
			defaultFramework(impl.key, impl.ext, name)
		case impl.key == implContainers:
			defaultPodSpec(&p.PodSpec, name)
		}
	}
	defaultExtensions(&p.ComponentExtensionSpec)
	if t := s.Spec.Transformer; t != nil {
		defaultPodSpec(&t.PodSpec, name)
		defaultExtensions(&t.ComponentExtensionSpec)
	}
	if e := s.Spec.Explainer; e != nil {
		if impls := e.implementations(); len(impls) == 1 {
			if x := impls[0].explainer; x != nil {
				x.Name = name
				defaultResources(&x.Resources)
				defaultProbes(&x.Container)
			} else {
				defaultPodSpec(&e.PodSpec, name)
			}
		}
		defaultExtensions(&e.ComponentExtensionSpec)
	}
}

func defaultFramework(key string, ext *PredictorExtensionSpec, containerName string) {
	ext.Name = containerName
	if ext.ProtocolVersion == "" {
		ext.ProtocolVersion = defaultProtocol(key)
	}
	defaultResources(&ext.Resources)
	defaultProbes(&ext.Container)
}

// defaultProtocol is v1 except for Triton, which speaks only V2.
func defaultProtocol(format string) string {
	switch format {
	case "triton", "tensorrt":
		return ProtocolV2
	}
	return ProtocolV1
}

func defaultPodSpec(p *PodSpec, containerName string) {
	if len(p.Containers) == 0 {
		return // left for Validate to report
	}
	p.Containers[0].Name = containerName // KServe renames the first container too
	defaultResources(&p.Containers[0].Resources)
	for i := range p.Containers {
		defaultProbes(&p.Containers[i])
	}
}

// defaultProbes gives httpGet and tcpSocket probes without a port the
// container's serving port, as Knative does: its first declared port, or
// DefaultServingPort. KServe's samples rely on this (probes.yaml).
func defaultProbes(c *Container) {
	port := int32(DefaultServingPort)
	if len(c.Ports) > 0 && c.Ports[0].ContainerPort > 0 {
		port = c.Ports[0].ContainerPort
	}
	for _, pr := range []*Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		if pr == nil {
			continue
		}
		if h := pr.HTTPGet; h != nil && h.Port.IsZero() {
			h.Port = FromInt(port)
		}
		if t := pr.TCPSocket; t != nil && t.Port.IsZero() {
			t.Port = FromInt(port)
		}
	}
}

// defaultResources fills each of cpu and memory, in requests and in limits,
// that the user left out, as KServe's setResourceRequirementDefaults does,
// with one difference: KServe fills a missing request with the default even
// when the user's limit is lower (memory limit 1Gi gets request 2Gi), which
// Kubernetes then rejects. Here a missing request takes the user's limit, as
// Kubernetes' own pod defaulting does, and a missing limit is raised to the
// user's request when that is above the default.
func defaultResources(r *ResourceRequirements) {
	if r.Requests == nil {
		r.Requests = make(map[string]Quantity, 2)
	}
	if r.Limits == nil {
		r.Limits = make(map[string]Quantity, 2)
	}
	for _, d := range []struct {
		name string
		def  Quantity
	}{{"cpu", DefaultCPU}, {"memory", DefaultMemory}} {
		req, hasReq := r.Requests[d.name]
		lim, hasLim := r.Limits[d.name]
		switch {
		case hasReq && hasLim:
		case hasLim:
			r.Requests[d.name] = d.def
			if _, err := lim.Value(); err == nil {
				r.Requests[d.name] = lim
			}
		case hasReq:
			r.Limits[d.name] = d.def
			if rv, err := req.Value(); err == nil {
				if dv, _ := d.def.Value(); rv > dv {
					r.Limits[d.name] = req
				}
			}
		default:
			r.Requests[d.name] = d.def
			r.Limits[d.name] = d.def
		}
	}
}

func defaultExtensions(x *ComponentExtensionSpec) {
	if x.MinReplicas == nil {
		n := int32(DefaultMinReplicas)
		x.MinReplicas = &n
	}
	if x.Logger != nil && x.Logger.Mode == "" {
		x.Logger.Mode = LogAll
	}
	if b := x.Batcher; b != nil {
		if b.MaxBatchSize == nil {
			n := DefaultMaxBatchSize
			b.MaxBatchSize = &n
		}
		if b.MaxLatency == nil {
			n := DefaultMaxLatencyMS
			b.MaxLatency = &n
		}
	}
}

// canonicalFormat maps the spellings of model format names seen in KServe
// samples to the lower-case names its runtimes declare.
func canonicalFormat(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "scikit-learn", "sk-learn":
		return "sklearn"
	case "lgbm":
		return "lightgbm"
	case "tf":
		return "tensorflow"
	case "torch":
		return "pytorch"
	}
	return n
}

// Default implements Object: it sets the namespace and lower-cases the
// framework name.
func (m *TrainedModel) Default() {
	if m.Metadata.Namespace == "" {
		m.Metadata.Namespace = DefaultNamespace
	}
	m.Spec.Model.Framework = canonicalFormat(m.Spec.Model.Framework)
}
