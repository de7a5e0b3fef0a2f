package operator

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Labels and annotations the operator puts on what it creates. The first
// two are KServe's, so selectors written for KServe's pods keep working.
const (
	LabelInferenceService = "serving.kserve.io/inferenceservice"
	LabelComponent        = "component"
	LabelRevision         = "serving.kserve.io/revision"
	LabelManagedBy        = "app.kubernetes.io/managed-by"
	managedBy             = "ferry-operator"
	// AnnotationSpecHash holds api.ComponentSpecHash of the spec a revision
	// was made from: the revision is immutable, and a new hash makes a new
	// revision (as a Knative Configuration does).
	AnnotationSpecHash = "serving.ferry.dev/spec-hash"
)

// Ports of the predictor container: ferry serve's defaults.
const (
	httpPort = 8080
	grpcPort = 8081
)

// RevisionName is the name of a component's n-th revision, the scheme
// `ferry up` and Knative use ("sklearn-iris-predictor-00001").
func RevisionName(isvc, component string, n int) string { return plan.RevisionName(isvc, component, n) }

// revisionNumber parses the number RevisionName put at the end of rev, or 0.
func revisionNumber(rev string) int { return plan.RevisionNumber(rev) }

// ServiceName is the Service in front of a component, as KServe's raw mode
// names it.
func ServiceName(isvc, component string) string { return isvc + "-" + component }

// PredictorDeployment returns the Deployment that runs revision rev of isvc's
// predictor, or an error when the predictor cannot run yet (a runtime image
// Ferry does not supply). isvc must be defaulted and valid. Owner references
// are added by the caller. Replicas are minReplicas (at least one).
func PredictorDeployment(isvc *api.InferenceService, rev, hash, serveImage string) (*appsv1.Deployment, error) {
	return ComponentDeployment(isvc, api.ComponentPredictor, rev, hash, serveImage, startReplicas(&isvc.Spec.Predictor.ComponentExtensionSpec))
}

// ComponentDeployment returns the Deployment that runs revision rev of one
// of isvc's components (predictor, transformer or explainer) with replicas
// replicas, or an error when Ferry cannot run that component yet. isvc
// must be defaulted and valid.
func ComponentDeployment(isvc *api.InferenceService, component, rev, hash, serveImage string, replicas int32) (*appsv1.Deployment, error) {
	var (
		c    corev1.Container
		vols []corev1.Volume
		ps   *api.PodSpec
		ext  *api.ComponentExtensionSpec
		err  error
	)
	switch component {
	case api.ComponentPredictor:
		p := &isvc.Spec.Predictor
		ps, ext = &p.PodSpec, &p.ComponentExtensionSpec
		c, vols, err = predictorContainer(isvc, serveImage)
	case api.ComponentTransformer:
		tr := isvc.Spec.Transformer
		if tr == nil {
			return nil, fmt.Errorf("the InferenceService has no transformer")
		}
		ps, ext = &tr.PodSpec, &tr.ComponentExtensionSpec
		c = chainedContainer(isvc, &tr.Containers[0])
	case api.ComponentExplainer:
		e := isvc.Spec.Explainer
		if e == nil {
			return nil, fmt.Errorf("the InferenceService has no explainer")
		}
		ps, ext = &e.PodSpec, &e.ComponentExtensionSpec
		c, err = explainerContainer(isvc, serveImage)
	default:
		return nil, fmt.Errorf("unknown component %q", component)
	}
	if err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name = "kserve-container"
	}
	labels := revisionLabels(isvc, component, rev, ext.Labels)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        rev,
			Namespace:   isvc.Metadata.Namespace,
			Labels:      labels,
			Annotations: map[string]string{AnnotationSpecHash: hash},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelRevision: rev}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: copyMap(ext.Annotations)},
				Spec: corev1.PodSpec{
					Containers:         []corev1.Container{c},
					Volumes:            vols,
					ServiceAccountName: firstNonEmpty(ps.ServiceAccountName, ps.ServiceAccount),
					NodeSelector:       copyMap(ps.NodeSelector),
				},
			},
		},
	}, nil
}

// startReplicas is minReplicas, at least one: nothing in raw mode wakes a
// Deployment at zero.
func startReplicas(x *api.ComponentExtensionSpec) int32 {
	if m := x.MinReplicas; m != nil && *m > 1 {
		return *m
	}
	return 1
}

// Where a multi-model predictor finds its model-config (the ConfigMap,
// mounted as KServe mounts it) and keeps what it pulls.
const (
	modelConfigDir = "/mnt/configs"
	modelsDir      = "/mnt/models"
)

func predictorContainer(isvc *api.InferenceService, serveImage string) (corev1.Container, []corev1.Volume, error) {
	p := &isvc.Spec.Predictor
	format, uri, _, custom := isvc.PredictorFormat()
	switch {
	case custom != nil:
		return containerFrom(custom), nil, nil
	case builtin.Has(format) && uri == "":
		// A multi-model server: ferry serve watches the model-config that
		// the TrainedModel reconciler writes, and pulls, loads and unloads
		// what it lists. The ConfigMap is optional so that the pod starts
		// before the first TrainedModel; the mount is read-only, so the
		// puller's markers go beside the models.
		c := serveContainer(serveImage, "--models-config", modelConfigDir+"/"+ModelConfigKey, "--puller-state-dir", modelsDir)
		c.VolumeMounts = []corev1.VolumeMount{
			{Name: "model-config", MountPath: modelConfigDir, ReadOnly: true},
			{Name: "models", MountPath: modelsDir},
		}
		withInline(&c, frameworkContainer(p))
		optional := true
		vols := []corev1.Volume{
			{Name: "model-config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: ModelConfigName(isvc.Metadata.Name)}, Optional: &optional}}},
			{Name: "models", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		}
		return c, vols, nil
	case builtin.Has(format):
		c := serveContainer(serveImage, "--model-uri", uri, "--model-name", isvc.Metadata.Name, "--model-format", format)
		if ext := frameworkContainer(p); ext != nil {
			c.Env = append(c.Env, envVars(ext.Env)...)
			c.Resources = resources(ext.Resources)
		}
		return c, nil, nil
	}
	return corev1.Container{}, nil, fmt.Errorf("predictor format %q needs its own serving runtime image, which the operator does not configure yet; give the predictor a container image (built-in formats: %s)", format, strings.Join(builtin.Names(), ", "))
}

// PredictorHost is the address a transformer or explainer calls its
// predictor at: the predictor's Service in the same namespace, port 80.
func PredictorHost(isvc *api.InferenceService) string {
	return ServiceName(isvc.Metadata.Name, api.ComponentPredictor) + "." + isvc.Metadata.Namespace
}

// chainedContainer is a transformer's or custom explainer's container with
// the arguments KServe's controller adds to it (each only when the
// container does not set it already): --model_name, --predictor_host (the
// predictor's Service) and --http_port.
func chainedContainer(isvc *api.InferenceService, src *api.Container) corev1.Container {
	c := containerFrom(src)
	c.Args = slices.Clone(c.Args)
	for _, kv := range [][2]string{
		{"--model_name", isvc.Metadata.Name},
		{"--predictor_host", PredictorHost(isvc)},
		{"--http_port", strconv.Itoa(httpPort)},
	} {
		if !hasArg(c.Args, kv[0]) {
			c.Args = append(c.Args, kv[0], kv[1])
		}
	}
	if len(c.Ports) == 0 {
		c.Ports = []corev1.ContainerPort{{Name: "http1", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP}}
	}
	return c
}

func hasArg(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// explainerContainer runs a built-in explainer in the ferry image exactly
// as `ferry up` runs it (plan.Explainer): alibi and aix explainers as
// `ferry serve` serving :explain and calling the predictor's Service over
// V1 (TreeShap loads the predictor's own model to read its trees), ART
// attacks as `ferry attack`. Custom containers get KServe's chaining
// arguments.
func explainerContainer(isvc *api.InferenceService, serveImage string) (corev1.Container, error) {
	e := isvc.Spec.Explainer
	if len(e.Containers) > 0 {
		return chainedContainer(isvc, &e.Containers[0]), nil
	}
	cmd, err := plan.Explainer(isvc, e, PredictorHost(isvc))
	if err != nil {
		return corev1.Container{}, err
	}
	if cmd.Sub == "attack" {
		c := serveContainer(serveImage)
		c.Args = append([]string{"attack", "--http-port", strconv.Itoa(httpPort), "--log-format", "json"}, cmd.Args...)
		c.Ports = c.Ports[:1]
		withInline(&c, &e.ART.Container)
		return c, nil
	}
	c := serveContainer(serveImage, cmd.Args...)
	inline := e.Alibi
	if inline == nil {
		inline = e.AIX
	}
	withInline(&c, &inline.Container)
	return c, nil
}

// withInline adds a framework or explainer key's inline env and
// resources.
func withInline(c *corev1.Container, in *api.Container) {
	if in == nil {
		return
	}
	c.Env = append(c.Env, envVars(in.Env)...)
	if len(in.Resources.Limits)+len(in.Resources.Requests) > 0 {
		c.Resources = resources(in.Resources)
	}
}

// serveContainer runs `ferry serve` with own after the listener flags;
// it pulls its model itself: there is no storage-initializer init
// container yet.
func serveContainer(image string, own ...string) corev1.Container {
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/v2/health/ready", Port: intstr.FromInt32(httpPort)}}}
	args := []string{"serve", "--http-port", strconv.Itoa(httpPort), "--grpc-port", strconv.Itoa(grpcPort), "--log-format", "json"}
	return corev1.Container{
		Name:  "kserve-container",
		Image: image,
		Args:  append(args, own...),
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP},
			{Name: "grpc", ContainerPort: grpcPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: probe,
	}
}

// frameworkContainer is the inline container of the predictor's framework
// key (resources, env), or nil.
func frameworkContainer(p *api.PredictorSpec) *api.Container {
	for _, ext := range []*api.PredictorExtensionSpec{p.SKLearn, p.XGBoost, p.LightGBM, p.PMML, p.ONNX} {
		if ext != nil {
			return &ext.Container
		}
	}
	if p.Model != nil {
		return &p.Model.Container
	}
	return nil
}

func containerFrom(c *api.Container) corev1.Container {
	out := corev1.Container{
		Name:            c.Name,
		Image:           c.Image,
		Command:         c.Command,
		Args:            c.Args,
		WorkingDir:      c.WorkingDir,
		Env:             envVars(c.Env),
		Resources:       resources(c.Resources),
		ImagePullPolicy: corev1.PullPolicy(c.ImagePullPolicy),
	}
	for _, p := range c.Ports {
		out.Ports = append(out.Ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: corev1.Protocol(p.Protocol)})
	}
	return out
}

// envVars copies literal values; valueFrom references are passed through
// for secrets and config maps, which is all KServe's samples use.
func envVars(in []api.EnvVar) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, e := range in {
		v := corev1.EnvVar{Name: e.Name, Value: e.Value}
		if f := e.ValueFrom; f != nil {
			v.ValueFrom = &corev1.EnvVarSource{}
			if r := f.SecretKeyRef; r != nil {
				v.ValueFrom.SecretKeyRef = &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}, Key: r.Key, Optional: r.Optional}
			}
			if r := f.ConfigMapKeyRef; r != nil {
				v.ValueFrom.ConfigMapKeyRef = &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}, Key: r.Key, Optional: r.Optional}
			}
			if r := f.FieldRef; r != nil {
				v.ValueFrom.FieldRef = &corev1.ObjectFieldSelector{APIVersion: r.APIVersion, FieldPath: r.FieldPath}
			}
		}
		out = append(out, v)
	}
	return out
}

// resources converts quantities; api.Validate has already rejected
// malformed ones, so a parse failure here drops only that entry.
func resources(r api.ResourceRequirements) corev1.ResourceRequirements {
	conv := func(in map[string]api.Quantity) corev1.ResourceList {
		if len(in) == 0 {
			return nil
		}
		out := corev1.ResourceList{}
		for k, q := range in {
			if v, err := resource.ParseQuantity(string(q)); err == nil {
				out[corev1.ResourceName(k)] = v
			}
		}
		return out
	}
	return corev1.ResourceRequirements{Limits: conv(r.Limits), Requests: conv(r.Requests)}
}

// ComponentService returns the Service in front of a component, selecting
// the pods of revision rev.
func ComponentService(isvc *api.InferenceService, component, rev string) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ServiceName(isvc.Metadata.Name, component),
			Namespace: isvc.Metadata.Namespace,
			Labels:    componentLabels(isvc, component),
		},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelRevision: rev},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(httpPort), Protocol: corev1.ProtocolTCP},
				{Name: "grpc", Port: grpcPort, TargetPort: intstr.FromInt32(grpcPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func componentLabels(isvc *api.InferenceService, component string) map[string]string {
	return map[string]string{
		LabelInferenceService: isvc.Metadata.Name,
		LabelComponent:        component,
		LabelManagedBy:        managedBy,
	}
}

func revisionLabels(isvc *api.InferenceService, component, rev string, user map[string]string) map[string]string {
	l := copyMap(user)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, componentLabels(isvc, component))
	l[LabelRevision] = rev
	return l
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
