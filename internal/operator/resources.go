package operator

import (
	"fmt"
	"maps"
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
// are added by the caller.
func PredictorDeployment(isvc *api.InferenceService, rev, hash, serveImage string) (*appsv1.Deployment, error) {
	p := &isvc.Spec.Predictor
	format, uri, _, custom := isvc.PredictorFormat()
	var c corev1.Container
	switch {
	case custom != nil:
		c = containerFrom(custom)
	case builtin.Has(format):
		if uri == "" {
			return nil, fmt.Errorf("predictor has no storageUri: multi-model servers (TrainedModel) are not supported by the operator yet")
		}
		c = serveContainer(isvc, format, uri, serveImage)
		if ext := frameworkContainer(p); ext != nil {
			c.Env = append(c.Env, envVars(ext.Env)...)
			c.Resources = resources(ext.Resources)
		}
	default:
		return nil, fmt.Errorf("predictor format %q needs its own serving runtime image, which the operator does not configure yet; give the predictor a container image (built-in formats: %s)", format, strings.Join(builtin.Names(), ", "))
	}
	if c.Name == "" {
		c.Name = "kserve-container"
	}
	labels := revisionLabels(isvc, api.ComponentPredictor, rev, p.Labels)
	replicas := int32(1)
	if m := p.MinReplicas; m != nil && *m > 1 {
		replicas = *m
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
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: copyMap(p.Annotations)},
				Spec: corev1.PodSpec{
					Containers:         []corev1.Container{c},
					ServiceAccountName: firstNonEmpty(p.ServiceAccountName, p.ServiceAccount),
					NodeSelector:       copyMap(p.NodeSelector),
				},
			},
		},
	}, nil
}

// serveContainer runs the model with `ferry serve`, which pulls it itself:
// there is no storage-initializer init container in this first slice.
func serveContainer(isvc *api.InferenceService, format, uri, image string) corev1.Container {
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/v2/health/ready", Port: intstr.FromInt32(httpPort)}}}
	return corev1.Container{
		Name:  "kserve-container",
		Image: image,
		Args: []string{
			"serve",
			"--model-uri", uri,
			"--model-name", isvc.Metadata.Name,
			"--model-format", format,
			"--http-port", strconv.Itoa(httpPort),
			"--grpc-port", strconv.Itoa(grpcPort),
			"--log-format", "json",
		},
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
