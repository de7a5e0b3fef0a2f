package v2

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/tensor"
)

const protoGRPC = "v2-grpc"

// GRPCServer serves inference.GRPCInferenceService on top of a Service.
type GRPCServer struct {
	pb.UnimplementedGRPCInferenceServiceServer
	svc *Service
}

var _ pb.GRPCInferenceServiceServer = (*GRPCServer)(nil)

// NewGRPCServer returns the gRPC front end of svc.
func NewGRPCServer(svc *Service) *GRPCServer { return &GRPCServer{svc: svc} }

// grpcErr turns a domain error into a gRPC status through protocol.Status.
func grpcErr(err error) error {
	if err == nil {
		return nil
	}
	_, code := protocol.Status(err)
	return status.Error(code, err.Error())
}

// ServerLive implements the RPC.
func (g *GRPCServer) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

// ServerReady implements the RPC.
func (g *GRPCServer) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.svc.cfg.Repository.Ready()}, nil
}

// ModelReady implements the RPC.
func (g *GRPCServer) ModelReady(_ context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	ok, err := g.svc.cfg.Repository.ModelReady(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.ModelReadyResponse{Ready: ok}, nil
}

// ServerMetadata implements the RPC.
func (g *GRPCServer) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: g.svc.cfg.ServerName, Version: g.svc.cfg.ServerVersion, Extensions: Extensions}, nil
}

// ModelMetadata implements the RPC.
func (g *GRPCServer) ModelMetadata(_ context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	md, err := g.svc.Metadata(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcErr(err)
	}
	conv := func(ts []TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
		out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &pb.ModelMetadataResponse{
		Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: conv(md.Inputs), Outputs: conv(md.Outputs), Properties: md.Properties,
	}, nil
}

// ModelInfer implements the RPC.
func (g *GRPCServer) ModelInfer(ctx context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	start := time.Now()
	resp, err := g.infer(ctx, in)
	g.svc.observe(in.GetModelName(), protoGRPC, err, start)
	return resp, grpcErr(err)
}

func (g *GRPCServer) infer(ctx context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	req, err := FromProtoWithin(in, protocol.LimitsFrom(ctx, g.svc.cfg.Limits))
	if err != nil {
		return nil, err
	}
	resp, err := g.svc.Infer(ctx, in.GetModelName(), in.GetModelVersion(), req)
	if err != nil {
		return nil, err
	}
	return ToProto(resp, len(in.GetRawInputContents()) > 0), nil
}

// RepositoryIndex implements the RPC.
func (g *GRPCServer) RepositoryIndex(_ context.Context, req *pb.RepositoryIndexRequest) (*pb.RepositoryIndexResponse, error) {
	out := &pb.RepositoryIndexResponse{}
	for _, e := range g.svc.Index(req.GetReady()) {
		out.Models = append(out.Models, &pb.RepositoryIndexResponse_ModelIndex{Name: e.Name, Version: e.Version, State: e.State, Reason: e.Reason})
	}
	return out, nil
}

// loadName accepts both the repository extension's request (model_name in
// field 2) and KServe's (the model name in field 1).
func loadName(repo, model string) (string, error) {
	if model == "" {
		model = repo
	}
	if model == "" {
		return "", fmt.Errorf("%w: model_name is required", protocol.ErrBadRequest)
	}
	return model, nil
}

// RepositoryModelLoad implements the RPC.
func (g *GRPCServer) RepositoryModelLoad(ctx context.Context, req *pb.RepositoryModelLoadRequest) (*pb.RepositoryModelLoadResponse, error) {
	name, err := loadName(req.GetRepositoryName(), req.GetModelName())
	if err == nil {
		err = g.svc.cfg.Repository.Load(ctx, name)
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.RepositoryModelLoadResponse{ModelName: name, IsLoaded: true}, nil
}

// RepositoryModelUnload implements the RPC.
func (g *GRPCServer) RepositoryModelUnload(ctx context.Context, req *pb.RepositoryModelUnloadRequest) (*pb.RepositoryModelUnloadResponse, error) {
	name, err := loadName(req.GetRepositoryName(), req.GetModelName())
	if err == nil {
		err = g.svc.cfg.Repository.Unload(ctx, name)
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.RepositoryModelUnloadResponse{ModelName: name, IsUnloaded: true}, nil
}

// FromProto converts a gRPC inference request under the default
// protocol.Limits.
func FromProto(in *pb.ModelInferRequest) (*InferRequest, error) {
	return FromProtoWithin(in, protocol.Limits{})
}

// FromProtoWithin converts a gRPC inference request under lim (zero fields
// take the defaults). Raw contents are checked before they are split into
// tensors; typed contents arrive decoded by gRPC (bounded by its message
// size limit), and a request whose contents exceed lim is refused before
// the model sees it.
func FromProtoWithin(in *pb.ModelInferRequest, lim protocol.Limits) (*InferRequest, error) {
	b := &reqBudget{lim: lim.WithDefaults()}
	req := &InferRequest{ID: in.GetId(), Parameters: fromParams(in.GetParameters())}
	req.Inputs = make([]*tensor.Tensor, 0, len(in.GetInputs()))
	raw := in.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(in.GetInputs()) {
		return nil, fmt.Errorf("%w: raw_input_contents has %d entries for %d inputs; send one per input, in order", protocol.ErrBadRequest, len(raw), len(in.GetInputs()))
	}
	if len(in.GetInputs()) == 0 {
		return nil, fmt.Errorf("%w: inputs: at least one input tensor is required", protocol.ErrBadRequest)
	}
	for i, ti := range in.GetInputs() {
		dt, err := tensor.ParseDataType(ti.GetDatatype())
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %w", protocol.ErrBadRequest, ti.GetName(), err)
		}
		if tensor.NumElements(ti.GetShape()) < 0 {
			return nil, fmt.Errorf("%w: input %q: shape %v is invalid", protocol.ErrBadRequest, ti.GetName(), ti.GetShape())
		}
		n := max(tensor.NumElements(ti.GetShape()), contentsLen(ti.GetContents()))
		size := n * elemCost(dt)
		if dt == tensor.Bytes {
			for _, s := range ti.GetContents().GetBytesContents() {
				size += int64(len(s))
			}
		}
		if !b.fits(n, size) {
			// The label is built only here: formatting it for every input
			// cost an allocation per request.
			return nil, b.take(fmt.Sprintf("input %q", ti.GetName()), n, size)
		}
		b.charge(n, size)
		var t *tensor.Tensor
		if len(raw) > 0 {
			if ti.GetContents() != nil && !emptyContents(ti.GetContents()) {
				return nil, fmt.Errorf("%w: input %q: set either contents or raw_input_contents, not both", protocol.ErrBadRequest, ti.GetName())
			}
			t, err = tensor.FromBinary(ti.GetName(), dt, ti.GetShape(), raw[i])
		} else {
			t, err = fromContents(ti.GetName(), dt, ti.GetShape(), ti.GetContents())
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", protocol.ErrBadRequest, err)
		}
		t.Parameters = fromParams(ti.GetParameters())
		req.Inputs = append(req.Inputs, t)
	}
	for _, o := range in.GetOutputs() {
		req.Outputs = append(req.Outputs, RequestedOutput{Name: o.GetName(), Parameters: fromParams(o.GetParameters())})
	}
	return req, nil
}

func emptyContents(c *pb.InferTensorContents) bool { return contentsLen(c) == 0 }

// contentsLen counts the elements in all of c's typed fields.
func contentsLen(c *pb.InferTensorContents) int64 {
	return int64(len(c.GetBoolContents()) + len(c.GetIntContents()) + len(c.GetInt64Contents()) + len(c.GetUintContents()) +
		len(c.GetUint64Contents()) + len(c.GetFp32Contents()) + len(c.GetFp64Contents()) + len(c.GetBytesContents()))
}

func fromContents(name string, dt tensor.DataType, shape []int64, c *pb.InferTensorContents) (*tensor.Tensor, error) {
	if c == nil {
		c = &pb.InferTensorContents{}
	}
	t := &tensor.Tensor{Name: name, Datatype: dt, Shape: shape}
	field := ""
	switch dt {
	case tensor.Bool:
		t.Data, field = c.BoolContents, "bool_contents"
	case tensor.Int8:
		t.Data, field = narrowInts[int8](c.IntContents, math.MinInt8, math.MaxInt8), "int_contents"
	case tensor.Int16:
		t.Data, field = narrowInts[int16](c.IntContents, math.MinInt16, math.MaxInt16), "int_contents"
	case tensor.Int32:
		t.Data, field = c.IntContents, "int_contents"
	case tensor.Int64:
		t.Data, field = c.Int64Contents, "int64_contents"
	case tensor.Uint8:
		t.Data, field = narrowUints[uint8](c.UintContents, math.MaxUint8), "uint_contents"
	case tensor.Uint16:
		t.Data, field = narrowUints[uint16](c.UintContents, math.MaxUint16), "uint_contents"
	case tensor.Uint32:
		t.Data, field = c.UintContents, "uint_contents"
	case tensor.Uint64:
		t.Data, field = c.Uint64Contents, "uint64_contents"
	case tensor.FP32:
		t.Data, field = c.Fp32Contents, "fp32_contents"
	case tensor.FP64:
		t.Data, field = c.Fp64Contents, "fp64_contents"
	case tensor.Bytes:
		t.Data, field = c.BytesContents, "bytes_contents"
	default:
		return nil, fmt.Errorf("tensor %q: %s data must be sent in raw_input_contents", name, dt)
	}
	if t.Data == nil {
		return nil, fmt.Errorf("tensor %q: %s value out of range in %s", name, dt, field)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%w (in contents.%s)", err, field)
	}
	return t, nil
}

// narrowInts converts int32 contents to a narrower type, or returns nil when
// a value is out of range. An empty input gives an empty, non-nil slice.
func narrowInts[T int8 | int16](in []int32, lo, hi int32) any {
	out := make([]T, len(in))
	for i, v := range in {
		if v < lo || v > hi {
			return nil
		}
		out[i] = T(v)
	}
	return out
}

func narrowUints[T uint8 | uint16](in []uint32, hi uint32) any {
	out := make([]T, len(in))
	for i, v := range in {
		if v > hi {
			return nil
		}
		out[i] = T(v)
	}
	return out
}

// ToProto converts a response. With raw set (the client sent
// raw_input_contents, as Triton's client does) or when an output cannot be
// expressed in typed contents (FP16, BF16, UINT8/16, INT8/16 round-trip
// through wider fields), outputs go in raw_output_contents.
func ToProto(resp *InferResponse, raw bool) *pb.ModelInferResponse {
	out := &pb.ModelInferResponse{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, Id: resp.ID, Parameters: toParams(resp.Parameters)}
	out.Outputs = make([]*pb.ModelInferResponse_InferOutputTensor, 0, len(resp.Outputs))
	for _, t := range resp.Outputs {
		if t.Datatype == tensor.FP16 || t.Datatype == tensor.BF16 {
			raw = true
		}
	}
	for _, t := range resp.Outputs {
		o := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape, Parameters: toParams(t.Parameters)}
		if raw {
			out.RawOutputContents = append(out.RawOutputContents, t.AppendBinary(make([]byte, 0, t.BinarySize())))
		} else {
			o.Contents = toContents(t)
		}
		out.Outputs = append(out.Outputs, o)
	}
	return out
}

func toContents(t *tensor.Tensor) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	switch v := t.Data.(type) {
	case []bool:
		c.BoolContents = v
	case []int8:
		c.IntContents = widen[int8, int32](v)
	case []int16:
		c.IntContents = widen[int16, int32](v)
	case []int32:
		c.IntContents = v
	case []int64:
		c.Int64Contents = v
	case []uint8:
		c.UintContents = widen[uint8, uint32](v)
	case []uint16:
		c.UintContents = widen[uint16, uint32](v)
	case []uint32:
		c.UintContents = v
	case []uint64:
		c.Uint64Contents = v
	case []float32:
		c.Fp32Contents = v
	case []float64:
		c.Fp64Contents = v
	case [][]byte:
		c.BytesContents = v
	}
	return c
}

func widen[S int8 | int16 | uint8 | uint16, D int32 | uint32](in []S) []D {
	out := make([]D, len(in))
	for i, v := range in {
		out[i] = D(v)
	}
	return out
}

func fromParams(in map[string]*pb.InferParameter) map[string]any {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, p := range in {
		switch v := p.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			out[k] = v.BoolParam
		case *pb.InferParameter_Int64Param:
			out[k] = v.Int64Param
		case *pb.InferParameter_StringParam:
			out[k] = v.StringParam
		case *pb.InferParameter_DoubleParam:
			out[k] = v.DoubleParam
		case *pb.InferParameter_Uint64Param:
			out[k] = v.Uint64Param
		}
	}
	return out
}

func toParams(in map[string]any) map[string]*pb.InferParameter {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*pb.InferParameter, len(in))
	for k, v := range in {
		switch v := v.(type) {
		case bool:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: v}}
		case int64:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: v}}
		case int:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: int64(v)}}
		case uint64:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: v}}
		case float64:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: v}}
		case string:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
		}
	}
	return out
}
