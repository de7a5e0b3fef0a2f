package quality

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/tensor"
)

// fakeInfer answers ModelInfer as Ferry's gRPC server does: typed contents
// for "probs", raw_output_contents for "raw", an error for anything else.
type fakeInfer struct {
	pb.UnimplementedGRPCInferenceServiceServer
}

func (fakeInfer) ModelInfer(_ context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	switch in.GetModelName() {
	case "probs":
		return &pb.ModelInferResponse{ModelName: "probs", ModelVersion: "2", Id: in.GetId(), Outputs: []*pb.ModelInferResponse_InferOutputTensor{{
			Name: "p", Datatype: "FP32", Shape: []int64{2, 2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.25, 0.75, 0.5, 0.5}},
		}}}, nil
	case "raw":
		raw := binary.LittleEndian.AppendUint64(nil, math.Float64bits(1.5))
		raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(2.5))
		return &pb.ModelInferResponse{ModelName: "raw", Id: in.GetId(), Outputs: []*pb.ModelInferResponse_InferOutputTensor{{
			Name: "y", Datatype: "FP64", Shape: []int64{2},
		}}, RawOutputContents: [][]byte{raw}}, nil
	}
	return nil, status.Error(codes.NotFound, "no such model")
}

// gRPC predictions are journaled under the response id (else the
// x-request-id metadata, else an id Ferry makes, sent back in the
// x-request-id header) and join REST feedback like REST predictions.
func TestGRPCPredictionsJoin(t *testing.T) {
	m, err := Open(Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := NewHandler(HandlerConfig{Monitor: m})
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(h.UnaryInterceptor))
	pb.RegisterGRPCInferenceServiceServer(srv, fakeInfer{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	infer := func(ctx context.Context, model, id string) (string, error) {
		var hdr metadata.MD
		_, err := client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: model, Id: id}, grpc.Header(&hdr))
		if v := hdr.Get(MetadataRequestID); len(v) > 0 {
			return v[0], err
		}
		return "", err
	}
	if got, err := infer(ctx, "probs", "g-1"); err != nil || got != "g-1" {
		t.Fatalf("probs: id %q, %v", got, err)
	}
	if got, err := infer(metadata.AppendToOutgoingContext(ctx, MetadataRequestID, "g-2"), "raw", ""); err != nil || got != "g-2" {
		t.Fatalf("raw with x-request-id: id %q, %v", got, err)
	}
	made, err := infer(ctx, "raw", "")
	if err != nil || len(made) != 36 {
		t.Fatalf("raw without an id: id %q, %v", made, err)
	}
	if _, err := infer(ctx, "missing", "g-4"); status.Code(err) != codes.NotFound {
		t.Fatalf("failing call: %v", err)
	}
	if _, err := client.ServerLive(ctx, &pb.ServerLiveRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("other methods pass through: %v", err)
	}

	web := h.Middleware(fakeServer())
	for _, tc := range []struct{ model, body, want string }{
		{"probs", `{"id":"g-1","truth":[1,0]}`, `"outcome":"joined","revision":"2"`},
		{"raw", `[{"id":"g-2","truth":[1.5,2]},{"id":"` + made + `","truth":[1,2]}]`, `"counts":{"received":2,"joined":2`},
		{"missing", `{"id":"g-4","truth":1}`, `"outcome":"unknown"`},
	} {
		w := do(web, "POST", "/v2/models/"+tc.model+"/feedback", tc.body)
		if w.Code != 200 || !contains(w.Body.String(), tc.want) {
			t.Errorf("feedback %s: %d %s; want %s", tc.body, w.Code, w.Body, tc.want)
		}
	}
	if c, _ := m.Counts(""); c.Recorded != 3 || c.Joined != 3 {
		t.Fatalf("counts %+v", c)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// What Ferry's gRPC server answers (typed or raw) journals the same rows
// as its REST answer.
func TestProtoRowsMatchREST(t *testing.T) {
	ts := []*tensor.Tensor{
		{Name: "predict", Datatype: tensor.FP32, Shape: []int64{2, 3}, Data: []float32{0.0055, 0.9711, 0.0232, 0.9918, 0.0054, 0.0027}},
		{Name: "y", Datatype: tensor.FP64, Shape: []int64{2}, Data: []float64{1.5, -2}},
		{Name: "label", Datatype: tensor.Int64, Shape: []int64{3}, Data: []int64{0, 2, 1}},
		{Name: "species", Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("setosa"), []byte("virginica")}},
		{Name: "ok", Datatype: tensor.Bool, Shape: []int64{2}, Data: []bool{true, false}},
		{Name: "nan", Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{1, float32(math.NaN())}}, // REST: null, not journaled
	}
	for _, tsr := range ts {
		resp := &v2.InferResponse{ModelName: "m", ID: "x", Outputs: []*tensor.Tensor{tsr}}
		body, _ := v2.EncodeResponse(nil, nil, resp, nil)
		want, _, _, werr := ParseV2(body, TaskAuto)
		for _, raw := range []bool{false, true} {
			got, err := ProtoRows(v2.ToProto(resp, raw), TaskAuto)
			if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s (raw %v): %+v %v; REST %+v %v", tsr.Name, tsr.Datatype, raw, got, err, want, werr)
			}
		}
	}
}
