package v2

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/tensor"
)

func fp32Input(name string, n int) *pb.ModelInferRequest_InferInputTensor {
	return &pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "FP32", Shape: []int64{1, int64(n)},
		Contents: &pb.InferTensorContents{Fp32Contents: make([]float32, n)}}
}

// The budget is shared by a request's inputs, and the error names the
// input that overran it (the label is built only on that path).
func TestGRPCLimitsNameInput(t *testing.T) {
	in := &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("a", 6), fp32Input("b", 6)}}
	if _, err := FromProtoWithin(in, protocol.Limits{MaxElements: 12}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := FromProtoWithin(in, protocol.Limits{MaxElements: 11})
	wantTooLarge(t, err, "--max-request-elements")
	if !strings.Contains(err.Error(), `input "b"`) {
		t.Errorf("error %q does not name input \"b\"", err)
	}
	_, err = FromProtoWithin(in, protocol.Limits{MaxDecodedBytes: 47})
	wantTooLarge(t, err, "--max-request-decoded-bytes")
	if !strings.Contains(err.Error(), `input "b"`) {
		t.Errorf("error %q does not name input \"b\"", err)
	}
}

// A batch-1 request decodes with a fixed, small number of allocations: the
// request, its inputs slice, the tensor and its Data interface.
func TestFromProtoAllocs(t *testing.T) {
	in := &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("input-0", 20)}}
	got := testing.AllocsPerRun(100, func() {
		if _, err := FromProto(in); err != nil {
			t.Fatal(err)
		}
	})
	if got > 4 {
		t.Errorf("FromProto allocates %v times per request, want at most 4", got)
	}
}

// FuzzFromProto decodes arbitrary ModelInferRequests under small limits:
// no panic, an accepted request stays within them and holds valid tensors,
// and a refused one is the client's fault (400 or 413), never ours.
func FuzzFromProto(f *testing.F) {
	seed := func(m *pb.ModelInferRequest) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("a", 3), fp32Input("b", 2)}})
	seed(&pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "s", Datatype: "BYTES", Shape: []int64{2},
		Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("x"), nil}}}}})
	seed(&pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "r", Datatype: "INT16", Shape: []int64{2}}},
		RawInputContents: [][]byte{{1, 0, 2, 0}}})
	seed(&pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "i", Datatype: "INT8", Shape: []int64{2},
		Contents: &pb.InferTensorContents{IntContents: []int32{1, 300}}}}})
	lim := protocol.Limits{MaxElements: 64, MaxDecodedBytes: 1024}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := &pb.ModelInferRequest{}
		if proto.Unmarshal(b, in) != nil {
			return
		}
		req, err := FromProtoWithin(in, lim)
		if err != nil {
			if code, _ := protocol.Status(err); code != 400 && code != 413 {
				t.Fatalf("status %d for %v", code, err)
			}
			if !errors.Is(err, protocol.ErrBadRequest) && !errors.Is(err, protocol.ErrTooLarge) && !errors.Is(err, tensor.ErrInvalid) {
				t.Fatalf("error %v is neither a bad request nor too large", err)
			}
			return
		}
		if len(req.Inputs) != len(in.GetInputs()) {
			t.Fatalf("%d inputs decoded from %d", len(req.Inputs), len(in.GetInputs()))
		}
		var elems int64
		for _, x := range req.Inputs {
			if err := x.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
			elems += int64(x.Len())
		}
		if elems > lim.MaxElements {
			t.Fatalf("accepted %d elements over a limit of %d", elems, lim.MaxElements)
		}
	})
}
