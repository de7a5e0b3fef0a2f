package api

// Container is the subset of a Kubernetes core/v1 Container that Ferry reads
// or records. Ferry runs Command/Args as a process; Image is recorded so the
// same YAML stays valid for KServe.
type Container struct {
	Name            string               `json:"name,omitempty"`
	Image           string               `json:"image,omitempty"`
	Command         []string             `json:"command,omitempty"`
	Args            []string             `json:"args,omitempty"`
	WorkingDir      string               `json:"workingDir,omitempty"`
	Ports           []ContainerPort      `json:"ports,omitempty"`
	Env             []EnvVar             `json:"env,omitempty"`
	Resources       ResourceRequirements `json:"resources,omitzero"`
	VolumeMounts    []VolumeMount        `json:"volumeMounts,omitempty"`
	LivenessProbe   *Probe               `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe               `json:"readinessProbe,omitempty"`
	StartupProbe    *Probe               `json:"startupProbe,omitempty"`
	ImagePullPolicy string               `json:"imagePullPolicy,omitempty"`
	// SecurityContext is recorded verbatim; Ferry does not act on it.
	SecurityContext map[string]any `json:"securityContext,omitempty"`
}

// ContainerPort is a port the container listens on.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostPort      int32  `json:"hostPort,omitempty"`
}

// EnvVar is one environment variable. ValueFrom is recorded; Ferry has no
// secrets or config maps to resolve it against.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource names where a Kubernetes variable's value would come from.
type EnvVarSource struct {
	SecretKeyRef     *KeySelector      `json:"secretKeyRef,omitempty"`
	ConfigMapKeyRef  *KeySelector      `json:"configMapKeyRef,omitempty"`
	FieldRef         *FieldSelector    `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldRef `json:"resourceFieldRef,omitempty"`
}

// KeySelector selects a key of a Secret or ConfigMap.
type KeySelector struct {
	Name     string `json:"name,omitempty"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// FieldSelector selects a field of the pod.
type FieldSelector struct {
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// ResourceFieldRef selects a container resource.
type ResourceFieldRef struct {
	ContainerName string   `json:"containerName,omitempty"`
	Resource      string   `json:"resource"`
	Divisor       Quantity `json:"divisor,omitempty"`
}

// VolumeMount is recorded for compatibility.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// ResourceRequirements holds requests and limits as Kubernetes quantities,
// keyed by resource name ("cpu", "memory", "nvidia.com/gpu", ...).
type ResourceRequirements struct {
	Limits   map[string]Quantity `json:"limits,omitempty"`
	Requests map[string]Quantity `json:"requests,omitempty"`
}

// Probe is a readiness, liveness or startup check. Exactly one of HTTPGet,
// TCPSocket, Exec and GRPC is set.
type Probe struct {
	HTTPGet             *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket           *TCPSocketAction `json:"tcpSocket,omitempty"`
	Exec                *ExecAction      `json:"exec,omitempty"`
	GRPC                *GRPCAction      `json:"grpc,omitempty"`
	InitialDelaySeconds int32            `json:"initialDelaySeconds,omitempty"`
	TimeoutSeconds      int32            `json:"timeoutSeconds,omitempty"`
	PeriodSeconds       int32            `json:"periodSeconds,omitempty"`
	SuccessThreshold    int32            `json:"successThreshold,omitempty"`
	FailureThreshold    int32            `json:"failureThreshold,omitempty"`
}

// HTTPGetAction probes with an HTTP GET; 200 ≤ status < 400 is success.
type HTTPGetAction struct {
	Path        string       `json:"path,omitempty"`
	Port        IntOrString  `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one header sent by an HTTP probe.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction probes by opening a TCP connection.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

// ExecAction probes by running a command; exit status 0 is success.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// GRPCAction probes with the gRPC health checking protocol.
type GRPCAction struct {
	Port    int32   `json:"port"`
	Service *string `json:"service,omitempty"`
}
