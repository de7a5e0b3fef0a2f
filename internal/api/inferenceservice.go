package api

// InferenceService is a served model with an optional transformer and
// explainer, in either API group (see TypeMeta).
type InferenceService struct {
	TypeMeta
	Metadata ObjectMeta              `json:"metadata"`
	Spec     InferenceServiceSpec    `json:"spec"`
	Status   *InferenceServiceStatus `json:"status,omitempty"`
}

var _ Object = (*InferenceService)(nil)

// Meta implements Object.
func (s *InferenceService) Meta() *ObjectMeta { return &s.Metadata }

// Type implements Object.
func (s *InferenceService) Type() TypeMeta { return s.TypeMeta }

// InferenceServiceSpec is the desired state: a predictor (required), and
// optionally a transformer in front of it and an explainer beside it.
type InferenceServiceSpec struct {
	Predictor   PredictorSpec    `json:"predictor"`
	Transformer *TransformerSpec `json:"transformer,omitempty"`
	Explainer   *ExplainerSpec   `json:"explainer,omitempty"`
}

// Component is one of PredictorSpec, TransformerSpec and ExplainerSpec.
type Component interface {
	// Extensions returns the scaling, rollout, logger and batcher settings.
	Extensions() *ComponentExtensionSpec
}

// Component names, as used in status.components and revision names.
const (
	ComponentPredictor   = "predictor"
	ComponentTransformer = "transformer"
	ComponentExplainer   = "explainer"
)

// PredictorSpec holds exactly one implementation: a framework key, the
// generic Model form, or custom Containers.
type PredictorSpec struct {
	SKLearn    *PredictorExtensionSpec `json:"sklearn,omitempty"`
	XGBoost    *PredictorExtensionSpec `json:"xgboost,omitempty"`
	LightGBM   *PredictorExtensionSpec `json:"lightgbm,omitempty"`
	PMML       *PredictorExtensionSpec `json:"pmml,omitempty"`
	ONNX       *PredictorExtensionSpec `json:"onnx,omitempty"`
	PyTorch    *TorchServeSpec         `json:"pytorch,omitempty"`
	Tensorflow *PredictorExtensionSpec `json:"tensorflow,omitempty"`
	Triton     *PredictorExtensionSpec `json:"triton,omitempty"`
	Paddle     *PredictorExtensionSpec `json:"paddle,omitempty"`
	Model      *ModelSpec              `json:"model,omitempty"`

	PodSpec
	ComponentExtensionSpec
}

// Extensions implements Component.
func (p *PredictorSpec) Extensions() *ComponentExtensionSpec { return &p.ComponentExtensionSpec }

// PredictorExtensionSpec is what every framework key holds: where the model
// is, which protocol to serve, and an optional container override.
type PredictorExtensionSpec struct {
	StorageURI      string       `json:"storageUri,omitempty"`
	RuntimeVersion  string       `json:"runtimeVersion,omitempty"`
	ProtocolVersion string       `json:"protocolVersion,omitempty"`
	Storage         *StorageSpec `json:"storage,omitempty"`
	Container
}

// StorageSpec locates a model through an entry of the storage config (KServe's
// storage-config secret) instead of a full storageUri: Key selects the entry
// ("default" when empty), Parameters override its values (bucket, type, ...),
// Path is the model's path inside the bucket. See StorageConfig.Resolve.
type StorageSpec struct {
	Path       *string           `json:"path,omitempty"`
	SchemaPath *string           `json:"schemaPath,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	StorageKey *string           `json:"key,omitempty"`
}

// TorchServeSpec is the pytorch key; ModelClassName selects KFServing's
// Python PyTorch server instead of TorchServe.
type TorchServeSpec struct {
	ModelClassName string `json:"modelClassName,omitempty"`
	PredictorExtensionSpec
}

// ModelSpec is the generic predictor form: a model format resolved to a
// serving runtime.
type ModelSpec struct {
	ModelFormat ModelFormat `json:"modelFormat"`
	Runtime     string      `json:"runtime,omitempty"`
	PredictorExtensionSpec
}

// ModelFormat names a model's framework and optionally its version.
type ModelFormat struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// TransformerSpec is a custom pre/post-processing component.
type TransformerSpec struct {
	PodSpec
	ComponentExtensionSpec
}

// Extensions implements Component.
func (t *TransformerSpec) Extensions() *ComponentExtensionSpec { return &t.ComponentExtensionSpec }

// ExplainerSpec holds exactly one of Alibi, AIX, ART or custom Containers.
type ExplainerSpec struct {
	Alibi *ExplainerExtensionSpec `json:"alibi,omitempty"`
	AIX   *ExplainerExtensionSpec `json:"aix,omitempty"`
	ART   *ExplainerExtensionSpec `json:"art,omitempty"`
	PodSpec
	ComponentExtensionSpec
}

// Extensions implements Component.
func (e *ExplainerSpec) Extensions() *ComponentExtensionSpec { return &e.ComponentExtensionSpec }

// ExplainerExtensionSpec configures a built-in explainer. Config entries
// become --key value arguments.
type ExplainerExtensionSpec struct {
	Type           string            `json:"type"`
	StorageURI     string            `json:"storageUri,omitempty"`
	RuntimeVersion string            `json:"runtimeVersion,omitempty"`
	Config         map[string]string `json:"config,omitempty"`
	Storage        *StorageSpec      `json:"storage,omitempty"`
	Container
}

// PodSpec is the subset of a Kubernetes PodSpec that components inline.
// Containers is what Ferry runs; the other fields are recorded so that
// KServe YAML using them still decodes.
//
// These fields are meaningful only to a Kubernetes operator; ferry up keeps
// them so that `get -o yaml` shows what was applied.
type PodSpec struct {
	Containers     []Container `json:"containers,omitempty"`
	InitContainers []Container `json:"initContainers,omitempty"`
	// ServiceAccount is the deprecated spelling of ServiceAccountName that
	// KServe's samples still use (pod-overrides.yaml).
	ServiceAccount                string            `json:"serviceAccount,omitempty"`
	ServiceAccountName            string            `json:"serviceAccountName,omitempty"`
	AutomountServiceAccountToken  *bool             `json:"automountServiceAccountToken,omitempty"`
	NodeName                      string            `json:"nodeName,omitempty"`
	NodeSelector                  map[string]string `json:"nodeSelector,omitempty"`
	ImagePullSecrets              []LocalObjectRef  `json:"imagePullSecrets,omitempty"`
	TerminationGracePeriodSeconds *int64            `json:"terminationGracePeriodSeconds,omitempty"`
	PriorityClassName             string            `json:"priorityClassName,omitempty"`
	SchedulerName                 string            `json:"schedulerName,omitempty"`
	RuntimeClassName              *string           `json:"runtimeClassName,omitempty"`
	HostNetwork                   bool              `json:"hostNetwork,omitempty"`
	HostIPC                       bool              `json:"hostIPC,omitempty"`
	HostPID                       bool              `json:"hostPID,omitempty"`
	ShareProcessNamespace         *bool             `json:"shareProcessNamespace,omitempty"`
	DNSPolicy                     string            `json:"dnsPolicy,omitempty"`
	DNSConfig                     map[string]any    `json:"dnsConfig,omitempty"`
	Hostname                      string            `json:"hostname,omitempty"`
	Subdomain                     string            `json:"subdomain,omitempty"`
	HostAliases                   []map[string]any  `json:"hostAliases,omitempty"`
	EnableServiceLinks            *bool             `json:"enableServiceLinks,omitempty"`
	Volumes                       []map[string]any  `json:"volumes,omitempty"`
	Tolerations                   []map[string]any  `json:"tolerations,omitempty"`
	TopologySpreadConstraints     []map[string]any  `json:"topologySpreadConstraints,omitempty"`
	Affinity                      map[string]any    `json:"affinity,omitempty"`
	SecurityContext               map[string]any    `json:"securityContext,omitempty"`
}

// LocalObjectRef names an object in the same namespace.
type LocalObjectRef struct {
	Name string `json:"name"`
}

// ComponentExtensionSpec holds the settings every component shares.
type ComponentExtensionSpec struct {
	// MinReplicas defaults to 1; 0 enables scale to zero.
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// MaxReplicas 0 means unlimited.
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// ScaleTarget is the per-replica target of ScaleMetric.
	ScaleTarget *int32 `json:"scaleTarget,omitempty"`
	// ScaleMetric is one of cpu, memory, concurrency, rps.
	ScaleMetric string `json:"scaleMetric,omitempty"`
	// ContainerConcurrency is the hard limit of requests in flight per
	// replica; 0 means unlimited.
	ContainerConcurrency *int64 `json:"containerConcurrency,omitempty"`
	// TimeoutSeconds bounds one request end to end.
	TimeoutSeconds *int64 `json:"timeout,omitempty"`
	// CanaryTrafficPercent routes this share to the latest ready revision
	// and the rest to the last rolled-out one.
	CanaryTrafficPercent *int64            `json:"canaryTrafficPercent,omitempty"`
	Logger               *LoggerSpec       `json:"logger,omitempty"`
	Batcher              *Batcher          `json:"batcher,omitempty"`
	Labels               map[string]string `json:"labels,omitempty"`
	Annotations          map[string]string `json:"annotations,omitempty"`
}

// LoggerSpec sends requests and/or responses as CloudEvents to URL.
type LoggerSpec struct {
	URL             string   `json:"url,omitempty"`
	Mode            string   `json:"mode,omitempty"`
	MetadataHeaders []string `json:"metadataHeaders,omitempty"`
}

// Logger modes.
const (
	LogAll      = "all"
	LogRequest  = "request"
	LogResponse = "response"
)

// Batcher merges V1 predict requests into batches of at most MaxBatchSize
// instances, waiting at most MaxLatency milliseconds.
type Batcher struct {
	MaxBatchSize *int `json:"maxBatchSize,omitempty"`
	MaxLatency   *int `json:"maxLatency,omitempty"`
	Timeout      *int `json:"timeout,omitempty"`
}

// Protocol versions.
const (
	ProtocolV1     = "v1"
	ProtocolV2     = "v2"
	ProtocolGRPCV1 = "grpc-v1"
	ProtocolGRPCV2 = "grpc-v2"
)

// InferenceServiceStatus is the observed state, shaped as KServe reports it.
type InferenceServiceStatus struct {
	ObservedGeneration int64                      `json:"observedGeneration,omitempty"`
	Conditions         []Condition                `json:"conditions,omitempty"`
	URL                string                     `json:"url,omitempty"`
	Address            *Addressable               `json:"address,omitempty"`
	Components         map[string]ComponentStatus `json:"components,omitempty"`
}

// ComponentStatus tracks one component's revisions and traffic.
type ComponentStatus struct {
	LatestReadyRevision       string          `json:"latestReadyRevision,omitempty"`
	LatestCreatedRevision     string          `json:"latestCreatedRevision,omitempty"`
	PreviousRolledoutRevision string          `json:"previousRolledoutRevision,omitempty"`
	LatestRolledoutRevision   string          `json:"latestRolledoutRevision,omitempty"`
	Traffic                   []TrafficTarget `json:"traffic,omitempty"`
	URL                       string          `json:"url,omitempty"`
	Address                   *Addressable    `json:"address,omitempty"`
}

// TrafficTarget is one Knative route entry.
type TrafficTarget struct {
	Tag            string `json:"tag,omitempty"`
	RevisionName   string `json:"revisionName,omitempty"`
	LatestRevision *bool  `json:"latestRevision,omitempty"`
	Percent        *int64 `json:"percent,omitempty"`
	URL            string `json:"url,omitempty"`
}
