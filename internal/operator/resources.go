package operator

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// ComponentDeployment is BuildDeployment with only the serve image: no
// runtimes ConfigMap and no storage credentials.
func ComponentDeployment(isvc *api.InferenceService, component, rev, hash, serveImage string, replicas int32) (*appsv1.Deployment, error) {
	return BuildDeployment(isvc, component, rev, hash, replicas, PodOptions{ServeImage: serveImage})
}

// BuildDeployment returns the Deployment that runs revision rev of one of
// isvc's components (predictor, transformer or explainer) with replicas
// replicas, as KServe builds the pod (see pods.go: the storage
// initializer, the agent sidecar, the runtime images, the pod spec passed
// through), or an error when Ferry cannot run that component. isvc must
// be defaulted and valid.
func BuildDeployment(isvc *api.InferenceService, component, rev, hash string, replicas int32, o PodOptions) (*appsv1.Deployment, error) {
	var (
		pod podParts
		ps  *api.PodSpec
		ext *api.ComponentExtensionSpec
		err error
	)
	switch component {
	case api.ComponentPredictor:
		p := &isvc.Spec.Predictor
		ps, ext = &p.PodSpec, &p.ComponentExtensionSpec
		pod, err = predictorPod(isvc, o)
	case api.ComponentTransformer:
		tr := isvc.Spec.Transformer
		if tr == nil {
			return nil, fmt.Errorf("the InferenceService has no transformer")
		}
		ps, ext = &tr.PodSpec, &tr.ComponentExtensionSpec
		pod, err = chainedPod(isvc, &tr.Containers[0], o)
	case api.ComponentExplainer:
		e := isvc.Spec.Explainer
		if e == nil {
			return nil, fmt.Errorf("the InferenceService has no explainer")
		}
		ps, ext = &e.PodSpec, &e.ComponentExtensionSpec
		pod, err = explainerPod(isvc, o)
	default:
		return nil, fmt.Errorf("unknown component %q", component)
	}
	if err != nil {
		return nil, err
	}
	peer := component == api.ComponentPredictor && withQuality(isvc, rev, &pod)
	spec, err := podSpec(isvc, component, ps, ext, pod, o)
	if err != nil {
		return nil, err
	}
	labels := revisionLabels(isvc, component, rev, ext.Labels)
	if peer {
		labels[LabelQualityPeer] = "true"
	}
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
				Spec:       spec,
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

// PredictorHost is the address a transformer or explainer calls its
// predictor at: the predictor's Service in the same namespace, port 80.
func PredictorHost(isvc *api.InferenceService) string {
	return ServiceName(isvc.Metadata.Name, api.ComponentPredictor) + "." + isvc.Metadata.Namespace
}

// chainedContainer is a transformer's or custom explainer's container with
// the arguments KServe's controller adds to it (each only when the
// container does not set it already): --model_name, --predictor_host (the
// predictor's Service) and --http_port.
func chainedContainer(isvc *api.InferenceService, src *api.Container) (corev1.Container, error) {
	c, err := containerFrom(src)
	if err != nil {
		return c, err
	}
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
	return c, nil
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
		return chainedContainer(isvc, &e.Containers[0])
	}
	cmd, err := plan.Explainer(isvc, e, PredictorHost(isvc))
	if err != nil {
		return corev1.Container{}, err
	}
	if cmd.Sub == "attack" {
		c := serveContainer(serveImage)
		c.Args = append([]string{"attack", "--http-port", strconv.Itoa(httpPort), "--log-format", "json"}, cmd.Args...)
		c.Ports = c.Ports[:1]
		return c, withInline(&c, &e.ART.Container)
	}
	c := serveContainer(serveImage, cmd.Args...)
	inline := e.Alibi
	if inline == nil {
		inline = e.AIX
	}
	return c, withInline(&c, &inline.Container)
}

// withInline adds what a framework or explainer key's inline container
// sets to a container the operator generated: env, resources, probes
// (replacing the generated ones), volume mounts, security context and
// pull policy.
func withInline(c *corev1.Container, in *api.Container) error {
	if in == nil {
		return nil
	}
	src, err := containerFrom(in)
	if err != nil {
		return err
	}
	c.Env = append(c.Env, src.Env...)
	if len(src.Resources.Limits)+len(src.Resources.Requests) > 0 {
		c.Resources = src.Resources
	}
	if src.ReadinessProbe != nil {
		c.ReadinessProbe = src.ReadinessProbe
	}
	if src.LivenessProbe != nil {
		c.LivenessProbe = src.LivenessProbe
	}
	if src.StartupProbe != nil {
		c.StartupProbe = src.StartupProbe
	}
	c.VolumeMounts = append(c.VolumeMounts, src.VolumeMounts...)
	if src.SecurityContext != nil {
		c.SecurityContext = src.SecurityContext
	}
	if src.ImagePullPolicy != "" {
		c.ImagePullPolicy = src.ImagePullPolicy
	}
	return nil
}

// serveContainer runs `ferry serve` with own after the listener flags.
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

// frameworkExtension is the predictor's framework key (or the generic
// model form), or nil for custom containers.
func frameworkExtension(p *api.PredictorSpec) *api.PredictorExtensionSpec {
	for _, ext := range []*api.PredictorExtensionSpec{p.SKLearn, p.XGBoost, p.LightGBM, p.PMML, p.ONNX, p.Tensorflow, p.Triton, p.Paddle} {
		if ext != nil {
			return ext
		}
	}
	if p.PyTorch != nil {
		return &p.PyTorch.PredictorExtensionSpec
	}
	if p.Model != nil {
		return &p.Model.PredictorExtensionSpec
	}
	return nil
}

// frameworkContainer is the inline container of the predictor's framework
// key (resources, env, probes, ...), or nil.
func frameworkContainer(p *api.PredictorSpec) *api.Container {
	if ext := frameworkExtension(p); ext != nil {
		return &ext.Container
	}
	return nil
}

// containerFrom converts a container of the spec to Kubernetes' type; the
// JSON of both is the same, so every field Ferry keeps (probes, volume
// mounts, security context, env from secrets and fields) passes through.
func containerFrom(c *api.Container) (corev1.Container, error) {
	var out corev1.Container
	if err := convertJSON(c, &out); err != nil {
		return out, fmt.Errorf("container %q: %w", c.Name, err)
	}
	return out, nil
}

// convertJSON copies in into out through their JSON.
func convertJSON(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
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
