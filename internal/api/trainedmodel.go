package api

// TrainedModel is one model loaded into a multi-model InferenceService.
type TrainedModel struct {
	TypeMeta
	Metadata ObjectMeta          `json:"metadata"`
	Spec     TrainedModelSpec    `json:"spec"`
	Status   *TrainedModelStatus `json:"status,omitempty"`
}

var _ Object = (*TrainedModel)(nil)

// Meta implements Object.
func (m *TrainedModel) Meta() *ObjectMeta { return &m.Metadata }

// Type implements Object.
func (m *TrainedModel) Type() TypeMeta { return m.TypeMeta }

// TrainedModelSpec names the parent InferenceService and the model.
type TrainedModelSpec struct {
	InferenceService string      `json:"inferenceService"`
	Model            StoredModel `json:"model"`
}

// StoredModel is where a TrainedModel's files are, their framework, and the
// memory they are expected to need.
type StoredModel struct {
	StorageURI string   `json:"storageUri"`
	Framework  string   `json:"framework"`
	Memory     Quantity `json:"memory"`
}

// TrainedModelStatus is the observed state; URL is the parent's URL plus the
// model's predict path.
type TrainedModelStatus struct {
	ObservedGeneration int64        `json:"observedGeneration,omitempty"`
	Conditions         []Condition  `json:"conditions,omitempty"`
	URL                string       `json:"url,omitempty"`
	Address            *Addressable `json:"address,omitempty"`
}
