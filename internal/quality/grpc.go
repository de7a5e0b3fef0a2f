package quality

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/ferryserve/ferry/api/inference"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/tensor"
)

// MetadataRequestID is the gRPC metadata key (request and response
// header) that carries the id a prediction is journaled under.
const MetadataRequestID = "x-request-id"

// UnaryInterceptor journals the answers of V2 ModelInfer calls, as
// Middleware does for REST: under the response's id (the request's,
// echoed), else the request's x-request-id or ce-id metadata, else an id
// Ferry makes. The id goes back in the x-request-id response header, and
// the journal write ends before the response is handed to gRPC to send.
func (h *Handler) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod != pb.GRPCInferenceService_ModelInfer_FullMethodName {
		return handler(ctx, req)
	}
	resp, err := handler(ctx, req)
	out, ok := resp.(*pb.ModelInferResponse)
	if err != nil || !ok || out == nil {
		return resp, err
	}
	id := out.GetId()
	if id == "" {
		id = metadataID(ctx)
	}
	if id == "" {
		id = newID()
	}
	name := out.GetModelName()
	if in, ok := req.(*pb.ModelInferRequest); ok && in.GetModelName() != "" {
		name = in.GetModelName() // the name the client addressed, as REST's path
	}
	rows, err := ProtoRows(out, h.cfg.Tasks[name])
	if err != nil {
		h.cfg.Monitor.NotRecorded()
		h.cfg.Logger.Debug("prediction not journaled", "model", name, "id", id, "err", err)
	} else {
		h.recordRows(name, id, out.GetModelVersion(), rows)
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(MetadataRequestID, id))
	return resp, nil
}

func metadataID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, k := range []string{MetadataRequestID, "ce-id"} {
		if v := md.Get(k); len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

// ProtoRows reads the rows of a gRPC infer response's first output (typed
// contents or raw_output_contents), as ParseV2 reads a REST one.
func ProtoRows(resp *pb.ModelInferResponse, task Task) ([]Row, error) {
	if len(resp.GetOutputs()) == 0 {
		return nil, fmt.Errorf("%w: no outputs", errOutputs)
	}
	o := resp.GetOutputs()[0]
	// The output, as the one input of a request, converts to a tensor
	// through the V2 decoder: the same checks as a request's contents.
	in := &pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: o.GetName(), Datatype: o.GetDatatype(), Shape: o.GetShape(), Contents: o.GetContents(),
	}}}
	if raw := resp.GetRawOutputContents(); len(raw) > 0 {
		in.RawInputContents = raw[:1]
	}
	r, err := v2.FromProto(in)
	if err != nil {
		return nil, fmt.Errorf("%w: output %q: %w", errOutputs, o.GetName(), err)
	}
	rows, err := tensorRows(r.Inputs[0], task)
	if err != nil {
		return nil, fmt.Errorf("%w: output %q: %w", errOutputs, o.GetName(), err)
	}
	return rows, nil
}

// tensorRows reads the rows of a decoded output tensor.
func tensorRows(t *tensor.Tensor, task Task) ([]Row, error) {
	n, k, err := rowShape(t.Shape)
	if err != nil {
		return nil, err
	}
	if t.Datatype == tensor.Bytes {
		bs, _ := t.Data.([][]byte)
		flat := make([]string, len(bs))
		for i, b := range bs {
			flat[i] = string(b)
		}
		return labelRows(flat, t.Shape, n, k)
	}
	flat, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	switch t.Datatype {
	case tensor.FP32, tensor.FP16, tensor.BF16:
		// REST writes these as the shortest decimal that reads back as the
		// same float32; journal the number that decimal names, as REST's
		// journal does (0.0055, not 0.005499999970197678).
		flat = slices.Clone(flat)
		for i, f := range flat {
			flat[i], _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
		}
	}
	for _, f := range flat {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a number JSON can carry", f) // REST writes null
		}
	}
	return numberRows(flat, t.Shape, n, k, isFloatType(t.Datatype.String()), task)
}
