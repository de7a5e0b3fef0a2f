package v2

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Observer records one finished request; the server's metrics implement it.
type Observer interface {
	ObserveRequest(model, protocol string, err error, took time.Duration)
}

// Config configures the V2 service shared by the REST and gRPC front ends.
type Config struct {
	Repository *repository.Repository
	// ServerName and ServerVersion are reported by server metadata.
	ServerName    string
	ServerVersion string
	// MaxBodyBytes bounds a REST request body (default 100 MiB).
	MaxBodyBytes int64
	// Limits bound what one request's inputs decode to (zero fields take
	// protocol's defaults); limits set on a request's context by
	// protocol.LimitsMiddleware or LimitsInterceptor take precedence.
	Limits protocol.Limits
	// Timeout bounds one inference request (0 = none beyond the client's).
	Timeout  time.Duration
	Observer Observer
	Logger   *slog.Logger
}

// Extensions are the protocol extensions Ferry implements.
var Extensions = []string{"model_repository", "binary_tensor_data"}

// Service implements the V2 operations on top of a repository. The REST
// handlers and the gRPC server both call it.
type Service struct {
	cfg Config
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 100 << 20
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "ferry"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

func (s *Service) observe(model, proto string, err error, start time.Time) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveRequest(model, proto, err, time.Since(start))
	}
}

// Infer runs one request against a model version ("" = default).
func (s *Service) Infer(ctx context.Context, model, version string, req *InferRequest) (*InferResponse, error) {
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	h, err := s.cfg.Repository.Acquire(model, version)
	if err != nil {
		return nil, err
	}
	defer h.Release()
	// The model's request and the answer in one allocation.
	one := &struct {
		req  runtime.Request
		resp InferResponse
	}{req: runtime.Request{Inputs: req.Inputs, Parameters: req.Parameters}}
	rreq := &one.req
	for _, o := range req.Outputs {
		rreq.Outputs = append(rreq.Outputs, o.Name)
	}
	res, err := h.Model.Predict(ctx, rreq)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", model, err)
	}
	outs, err := selectOutputs(model, res.Outputs, req.Outputs)
	if err != nil {
		return nil, err
	}
	one.resp = InferResponse{
		ModelName:    model,
		ModelVersion: h.Version,
		ID:           req.ID,
		Parameters:   res.Parameters,
		Outputs:      outs,
	}
	return &one.resp, nil
}

// selectOutputs keeps the requested outputs in request order, or all of them
// when none were named, and checks the runtime built them consistently.
func selectOutputs(model string, got []*tensor.Tensor, want []RequestedOutput) ([]*tensor.Tensor, error) {
	for _, t := range got {
		if err := t.Validate(); err != nil {
			// The runtime produced a malformed tensor: our bug, not the client's.
			return nil, fmt.Errorf("model %q produced a malformed output: %s", model, err.Error())
		}
	}
	if len(want) == 0 {
		return got, nil
	}
	out := make([]*tensor.Tensor, 0, len(want))
	for _, w := range want {
		i := slices.IndexFunc(got, func(t *tensor.Tensor) bool { return t.Name == w.Name })
		if i < 0 {
			names := make([]string, len(got))
			for j, t := range got {
				names[j] = t.Name
			}
			return nil, fmt.Errorf("%w: model %q has no output %q (it produced: %s)", protocol.ErrBadRequest, model, w.Name, strings.Join(names, ", "))
		}
		out = append(out, got[i])
	}
	return out, nil
}

// ModelMetadata is the model metadata response.
type ModelMetadata struct {
	Name       string            `json:"name"`
	Versions   []string          `json:"versions,omitempty"`
	Platform   string            `json:"platform"`
	Inputs     []TensorMetadata  `json:"inputs"`
	Outputs    []TensorMetadata  `json:"outputs"`
	Properties map[string]string `json:"properties,omitempty"`
}

// TensorMetadata describes one tensor of a model.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Metadata describes a ready model version.
func (s *Service) Metadata(model, version string) (*ModelMetadata, error) {
	h, err := s.cfg.Repository.Acquire(model, version)
	if err != nil {
		return nil, err
	}
	md := h.Model.Metadata()
	h.Release()
	versions, err := s.cfg.Repository.Versions(model)
	if err != nil {
		return nil, err
	}
	out := &ModelMetadata{Name: model, Versions: versions, Platform: md.Platform, Properties: md.Properties}
	out.Inputs = tensorMetadata(md.Inputs)
	out.Outputs = tensorMetadata(md.Outputs)
	return out, nil
}

func tensorMetadata(in []runtime.TensorMeta) []TensorMetadata {
	out := make([]TensorMetadata, len(in))
	for i, t := range in {
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		out[i] = TensorMetadata{Name: t.Name, Datatype: t.Datatype.String(), Shape: shape}
	}
	return out
}

// IndexEntry is one row of the repository index.
type IndexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
}

// Index lists the repository's models; readyOnly keeps only ready ones.
func (s *Service) Index(readyOnly bool) []IndexEntry {
	out := []IndexEntry{}
	for _, st := range s.cfg.Repository.Index() {
		if readyOnly && st.State != repository.Ready {
			continue
		}
		out = append(out, IndexEntry{Name: st.Name, Version: st.Version, State: string(st.State), Reason: st.Reason})
	}
	return out
}
