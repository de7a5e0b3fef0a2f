package operator

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/quality"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PodOptions are what building a pod needs beyond the InferenceService.
type PodOptions struct {
	// ServeImage holds the ferry binary as its entrypoint: ferry serve,
	// the storage initializer (ferry pull) and the agent run in it.
	ServeImage string
	// Runtimes are the runtime images by framework (nil: none), read from
	// the ConfigMap RuntimesRef ("namespace/name"; named in errors).
	Runtimes    Runtimes
	RuntimesRef string
	// Credentials go to the containers that pull models: the storage
	// initializer, a multi-model ferry serve, built-in explainers.
	Credentials *StorageCredentials
}

// Where models and model-configs are mounted, as KServe mounts them.
const (
	modelConfigDir = "/mnt/configs"
	modelsDir      = "/mnt/models"
	pvcDir         = "/mnt/pvc"
	// modelsVolume is the emptyDir the storage initializer fills
	// (KServe's name for it).
	modelsVolume = "kserve-provision-location"
	pvcVolume    = "kserve-pvc-source"
)

// Names and ports of the containers the operator adds.
const (
	StorageInitializerName = "storage-initializer"
	AgentName              = "agent"
	agentPort              = 9081
	// runtimeGRPCPort is where TF Serving, Triton and the ONNX Runtime
	// server listen for gRPC (KServe's 9000).
	runtimeGRPCPort = 9000
	spoolVolume     = "ferry-log-spool"
	spoolDir        = "/var/spool/ferry"
)

// defaultLoggerURL is where a logger without a url sends events: KServe's
// default (its ConfigMap's logger.defaultUrl).
const defaultLoggerURL = "http://default-broker"

// podParts is what a component's builder decides: the serving container,
// init containers and volumes to add, and whether the serving container is
// ferry serve (which logs and batches itself: no agent sidecar).
type podParts struct {
	main    corev1.Container
	init    []corev1.Container
	volumes []corev1.Volume
	ferry   bool
}

// predictorPod builds the predictor. A storageUri to download is pulled by
// the storage initializer into an emptyDir at /mnt/models, mounted
// read-only in the serving container, whatever serves it (ferry serve,
// a runtime image, a custom container), as KServe does; pvc:// mounts the
// claim instead, and a local path is used as it is.
func predictorPod(isvc *api.InferenceService, o PodOptions) (podParts, error) {
	p := &isvc.Spec.Predictor
	format, uri, protocol, custom := isvc.PredictorFormat()
	ext := frameworkExtension(p)
	var rt *Runtime
	var rtKey string
	if custom == nil && o.Runtimes != nil {
		name := ""
		if p.Model != nil {
			name = p.Model.Runtime
		}
		if format == "pytorch" && (p.PyTorch == nil || p.PyTorch.ModelClassName == "") {
			// KFServing 0.5 runs pytorch with its "v2" entry (TorchServe)
			// whatever the protocol; "v1" is the Python server that
			// modelClassName selects.
			protocol = api.ProtocolV2
		}
		rt, rtKey = o.Runtimes.lookup(format, name, protocol)
	}
	ferry := custom == nil && rt == nil && builtin.Has(format)
	if custom == nil && rt == nil && !ferry {
		where := "no runtimes ConfigMap is configured (ferry operator --runtimes-configmap namespace/name)"
		if o.Runtimes != nil {
			where = "the runtimes ConfigMap " + o.RuntimesRef + " has none"
		}
		want := fmt.Sprintf("a %q entry", format)
		if p.Model != nil && p.Model.Runtime != "" {
			want = fmt.Sprintf("the %q entry that model.runtime names", p.Model.Runtime)
		}
		return podParts{}, fmt.Errorf("predictor format %q needs a serving runtime image: %s under the %q key of the runtimes ConfigMap, and %s; or give the predictor a container image (formats ferry serve runs itself: %s)",
			format, want, RuntimesKey, where, strings.Join(builtin.Names(), ", "))
	}
	if rt != nil && uri == "" {
		return podParts{}, fmt.Errorf("predictor format %q without a storageUri is a multi-model server, which the operator runs only with ferry serve (built-in formats), not with the %q runtime", format, rtKey)
	}
	if p.PyTorch != nil && p.PyTorch.ModelClassName != "" && rt != nil && rt.server(rtKey) == ServerTorchServe {
		return podParts{}, fmt.Errorf("pytorch modelClassName selects KFServing's Python PyTorch server, which the operator does not run; drop modelClassName to serve with TorchServe, or give the predictor a container")
	}

	var parts podParts
	var modelPath string
	var mounts []corev1.VolumeMount
	if uri != "" {
		modelPath, mounts = storageFor(uri, o, &parts)
	}
	switch {
	case custom != nil:
		c, err := containerFrom(custom)
		if err != nil {
			return podParts{}, err
		}
		c.VolumeMounts = append(c.VolumeMounts, mounts...)
		parts.main = c
		return parts, nil

	case ferry && uri == "":
		// A multi-model server: ferry serve watches the model-config that
		// the TrainedModel reconciler writes, and pulls (with the
		// credentials), loads and unloads what it lists. The ConfigMap is
		// optional so that the pod starts before the first TrainedModel;
		// the mount is read-only, so the puller's markers go beside the
		// models.
		c := serveContainer(o.ServeImage, "--models-config", modelConfigDir+"/"+ModelConfigKey, "--puller-state-dir", modelsDir)
		c.VolumeMounts = []corev1.VolumeMount{
			{Name: "model-config", MountPath: modelConfigDir, ReadOnly: true},
			{Name: "models", MountPath: modelsDir},
		}
		withCredentials(&c, o.Credentials, &parts)
		if err := withInline(&c, frameworkContainer(p)); err != nil {
			return podParts{}, err
		}
		optional := true
		parts.volumes = append(parts.volumes,
			corev1.Volume{Name: "model-config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: ModelConfigName(isvc.Metadata.Name)}, Optional: &optional}}},
			corev1.Volume{Name: "models", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		parts.main, parts.ferry = c, true
		return parts, nil

	case ferry:
		source := []string{"--model-dir", modelPath}
		if isLocal(uri) {
			// A path on the node (or in the image): ferry serve reads it
			// in place, a single file included.
			source = []string{"--model-uri", uri}
		}
		c := serveContainer(o.ServeImage, append(source, "--model-name", isvc.Metadata.Name, "--model-format", format)...)
		c.VolumeMounts = mounts
		if err := withInline(&c, frameworkContainer(p)); err != nil {
			return podParts{}, err
		}
		parts.main, parts.ferry = c, true
		return parts, nil
	}

	c := runtimeContainer(isvc, rt, rtKey, modelPath, ext)
	c.VolumeMounts = mounts
	if err := withInline(&c, &ext.Container); err != nil {
		return podParts{}, err
	}
	c.Args = append(c.Args, ext.Args...)
	c.Image = rt.image(ext.RuntimeVersion, wantsGPU(c.Resources))
	parts.main = c
	return parts, nil
}

// isLocal reports whether uri is a path (or file:// URI) used in place.
func isLocal(uri string) bool {
	return strings.HasPrefix(uri, "/") || strings.HasPrefix(uri, "file://")
}

// storageFor decides where the model at uri is found in the pod, adding
// the storage initializer and volumes it needs to parts; it returns the
// model's path and the serving container's mounts.
func storageFor(uri string, o PodOptions, parts *podParts) (string, []corev1.VolumeMount) {
	switch {
	case isLocal(uri):
		return strings.TrimPrefix(uri, "file://"), nil
	case strings.HasPrefix(uri, "pvc://"):
		// The claim is mounted, not copied, as KServe mounts it.
		claim, sub, _ := strings.Cut(strings.TrimPrefix(uri, "pvc://"), "/")
		parts.volumes = append(parts.volumes, corev1.Volume{Name: pvcVolume, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: true}}})
		return path.Join(pvcDir, sub), []corev1.VolumeMount{{Name: pvcVolume, MountPath: pvcDir, ReadOnly: true}}
	}
	init := corev1.Container{
		Name:  StorageInitializerName,
		Image: o.ServeImage,
		Args:  []string{"pull", uri, modelsDir, "--log-format", "json"},
		// KServe's storage initializer resources.
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: modelsVolume, MountPath: modelsDir}},
		// A failed pull's error (the last lines ferry pull writes) shows
		// in kubectl describe pod.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	withCredentials(&init, o.Credentials, parts)
	parts.init = append(parts.init, init)
	parts.volumes = append(parts.volumes, corev1.Volume{Name: modelsVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return modelsDir, []corev1.VolumeMount{{Name: modelsVolume, MountPath: modelsDir, ReadOnly: true}}
}

// withCredentials gives c the storage credentials, adding their volumes
// to parts once.
func withCredentials(c *corev1.Container, cr *StorageCredentials, parts *podParts) {
	if cr == nil {
		return
	}
	c.Env = append(c.Env, cr.Env...)
	c.VolumeMounts = append(c.VolumeMounts, cr.Mounts...)
	for _, v := range cr.Volumes {
		if !slices.ContainsFunc(parts.volumes, func(w corev1.Volume) bool { return w.Name == v.Name }) {
			parts.volumes = append(parts.volumes, v)
		}
	}
}

// runtimeContainer runs a runtime image with the arguments KServe's
// controller gives it, the model at modelPath.
func runtimeContainer(isvc *api.InferenceService, rt *Runtime, key, modelPath string, ext *api.PredictorExtensionSpec) corev1.Container {
	name := isvc.Metadata.Name
	httpProbe := func(p string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstr.FromInt32(httpPort)}}}
	}
	tcpProbe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(httpPort)}}}
	ports := func(grpc bool) []corev1.ContainerPort {
		p := []corev1.ContainerPort{{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP}}
		if grpc {
			p = append(p, corev1.ContainerPort{Name: "grpc", ContainerPort: runtimeGRPCPort, Protocol: corev1.ProtocolTCP})
		}
		return p
	}
	c := corev1.Container{Name: "kserve-container"}
	switch rt.server(key) {
	case ServerTFServing:
		c.Command = []string{"/usr/bin/tensorflow_model_server"}
		c.Args = []string{"--port=" + strconv.Itoa(runtimeGRPCPort), "--rest_api_port=" + strconv.Itoa(httpPort),
			"--model_name=" + name, "--model_base_path=" + modelPath}
		timeout := int64(rt.DefaultTimeout)
		if t := isvc.Spec.Predictor.TimeoutSeconds; t != nil {
			timeout = *t
		}
		if timeout > 0 {
			c.Args = append(c.Args, "--rest_api_timeout_in_ms="+strconv.FormatInt(1000*timeout, 10))
		}
		c.Ports, c.ReadinessProbe = ports(true), httpProbe("/v1/models/"+name)
	case ServerTriton:
		c.Command = []string{"tritonserver"}
		c.Args = []string{"--model-store=" + modelPath, "--grpc-port=" + strconv.Itoa(runtimeGRPCPort), "--http-port=" + strconv.Itoa(httpPort),
			"--allow-grpc=true", "--allow-http=true"}
		c.Ports, c.ReadinessProbe = ports(true), httpProbe("/v2/health/ready")
	case ServerTorchServe:
		// The KServe TorchServe image's wrapper answers on 8080 and reads
		// the model store and config from the model directory.
		c.Args = []string{"torchserve", "--start", "--model-store=" + modelPath + "/model-store",
			"--ts-config=" + modelPath + "/config/config.properties"}
		c.Ports, c.ReadinessProbe = ports(false), tcpProbe
	case ServerONNXRuntime:
		c.Args = []string{"--model_path=" + modelPath + "/model.onnx", "--http_port=" + strconv.Itoa(httpPort), "--grpc_port=" + strconv.Itoa(runtimeGRPCPort)}
		c.Ports, c.ReadinessProbe = ports(true), tcpProbe
	default: // KServe's Python model servers
		c.Args = []string{"--model_name=" + name, "--model_dir=" + modelPath, "--http_port=" + strconv.Itoa(httpPort)}
		c.Ports, c.ReadinessProbe = ports(false), httpProbe("/v1/models/"+name)
	}
	return c
}

// wantsGPU reports whether a container asks for an NVIDIA GPU.
func wantsGPU(r corev1.ResourceRequirements) bool {
	q, ok := r.Limits["nvidia.com/gpu"]
	return ok && !q.IsZero()
}

// explainerPod builds the explainer; built-in explainers pull their data
// (and TreeShap the predictor's model) with the storage credentials.
func explainerPod(isvc *api.InferenceService, o PodOptions) (podParts, error) {
	var parts podParts
	if e := isvc.Spec.Explainer; len(e.Containers) > 0 {
		return chainedPod(isvc, &e.Containers[0], o)
	}
	c, err := explainerContainer(isvc, o.ServeImage)
	if err != nil {
		return parts, err
	}
	withCredentials(&c, o.Credentials, &parts)
	parts.main, parts.ferry = c, len(c.Args) > 0 && c.Args[0] == "serve"

	return parts, nil
}

// podSpec is the component's pod: the spec's pod fields passed through
// (tolerations, affinity, volumes, imagePullSecrets, securityContext,
// init containers, ...), then the operator's init containers and volumes,
// the serving container and, when the component has a logger or batcher
// and its container is not ferry serve, the agent sidecar in front of it.
func podSpec(isvc *api.InferenceService, component string, ps *api.PodSpec, ext *api.ComponentExtensionSpec, parts podParts, o PodOptions) (corev1.PodSpec, error) {
	var spec corev1.PodSpec
	in := *ps
	in.Containers = nil
	if err := convertJSON(&in, &spec); err != nil {
		return spec, fmt.Errorf("%s pod spec: %w", component, err)
	}
	spec.ServiceAccountName = firstNonEmpty(ps.ServiceAccountName, ps.ServiceAccount)
	spec.DeprecatedServiceAccount = ""
	main := parts.main
	if main.Name == "" {
		main.Name = "kserve-container"
	}
	if ext.Logger != nil || ext.Batcher != nil {
		flags := agentFlags(isvc, component, ext)
		parts.volumes = append(parts.volumes, corev1.Volume{Name: spoolVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		spool := corev1.VolumeMount{Name: spoolVolume, MountPath: spoolDir}
		if parts.ferry {
			// ferry serve logs and batches in process (as ferry up runs
			// it), with the agent's flags: no proxy hop, and gRPC too.
			main.Args = append(main.Args, flags...)
			main.VolumeMounts = append(main.VolumeMounts, spool)
			spec.Containers = []corev1.Container{main}
		} else {
			agent := corev1.Container{
				Name:  AgentName,
				Image: o.ServeImage,
				Args: append([]string{"agent", "--port", strconv.Itoa(agentPort), "--component-port", strconv.Itoa(httpPort),
					"--log-format", "json"}, flags...),
				Ports:          []corev1.ContainerPort{{Name: "agent", ContainerPort: agentPort, Protocol: corev1.ProtocolTCP}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(agentPort)}}},
				VolumeMounts:   []corev1.VolumeMount{spool},
			}
			spec.Containers = []corev1.Container{main, agent}
		}
	} else {
		spec.Containers = []corev1.Container{main}
	}
	spec.InitContainers = append(spec.InitContainers, parts.init...)
	spec.Volumes = append(spec.Volumes, parts.volumes...)
	return spec, nil
}

// agentFlags are the logger and batcher flags `ferry agent` and `ferry
// serve` share, from the component's logger and batcher.
func agentFlags(isvc *api.InferenceService, component string, ext *api.ComponentExtensionSpec) []string {
	var args []string
	if l := ext.Logger; l != nil {
		url := l.URL
		if url == "" {
			url = defaultLoggerURL
		}
		args = append(args, "--log-url", url, "--log-spool-dir", spoolDir,
			"--inference-service", isvc.Metadata.Name, "--namespace", isvc.Metadata.Namespace, "--component", component)
		if l.Mode != "" {
			args = append(args, "--log-mode", l.Mode)
		}
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
	return args
}

// EntryPort is the port a revision's Service sends HTTP to: the agent's
// when the pod has the agent sidecar, else the serving container's 8080.
func EntryPort(d *appsv1.Deployment) int32 {
	if d != nil && slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == AgentName }) {
		return agentPort
	}
	return httpPort
}

// withEntryPort points svc's HTTP port at d's entry port.
func withEntryPort(svc *corev1.Service, d *appsv1.Deployment) *corev1.Service {
	svc.Spec.Ports[0].TargetPort = intstr.FromInt32(EntryPort(d))
	return svc
}

// chainedPod is a transformer's or custom explainer's container with
// KServe's chaining arguments; a STORAGE_URI in its environment is pulled
// by the storage initializer into /mnt/models, as KServe does for custom
// containers.
func chainedPod(isvc *api.InferenceService, src *api.Container, o PodOptions) (podParts, error) {
	var parts podParts
	c, err := chainedContainer(isvc, src)
	if err != nil {
		return parts, err
	}
	if uri := storageURIEnv(src); uri != "" {
		_, mounts := storageFor(uri, o, &parts)
		c.VolumeMounts = append(c.VolumeMounts, mounts...)
	}
	parts.main = c
	return parts, nil
}

// storageURIEnv is a custom container's STORAGE_URI, or "".
func storageURIEnv(c *api.Container) string {
	for _, e := range c.Env {
		if e.Name == api.StorageURIEnv {
			return e.Value
		}
	}
	return ""
}

// Where a predictor pod journals its predictions for quality monitoring.
const (
	qualityVolume = "ferry-quality"
	qualityDir    = "/var/lib/ferry/quality"
)

// withQuality turns on quality monitoring (quality.Annotation) in a
// predictor that runs as ferry serve: its predictions are journaled in an
// emptyDir, which outlives a restart of the container (kill -9 included)
// but not the pod, and labelled with the revision, so that Prometheus can
// add the pods' windows up by revision (rollout.PrometheusSource.Quality).
// A Service sends feedback to any one pod, so each pod forwards what its
// journal does not know to the others, every revision's (a canary's
// predictions are journaled by the canary's pods), which the headless
// Service QualityPeersService lists: the pod is labelled to be in it and
// given its name as --quality-peers. A container's own server has no
// journal: the annotation does nothing there. It reports whether it
// turned monitoring on.
func withQuality(isvc *api.InferenceService, rev string, parts *podParts) bool {
	if !qualityOn(isvc) || !parts.ferry {
		return false
	}
	parts.main.Args = append(parts.main.Args, "--quality-dir", qualityDir, "--quality-revision", rev,
		"--quality-peers", QualityPeersAddr(isvc))
	parts.main.VolumeMounts = append(parts.main.VolumeMounts, corev1.VolumeMount{Name: qualityVolume, MountPath: qualityDir})
	parts.volumes = append(parts.volumes, corev1.Volume{Name: qualityVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return true
}

// qualityOn reports whether isvc asks for quality monitoring.
func qualityOn(isvc *api.InferenceService) bool {
	on, _ := strconv.ParseBool(isvc.Metadata.Annotations[quality.Annotation])
	return on
}
