package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/server"
)

// ferry serve's gRPC codec decodes ModelInfer requests by hand under
// Config.RequestLimits: a request over them is still seen by the
// interceptors (as the request logger would log it), answered
// RESOURCE_EXHAUSTED naming the flag, and counted under code 413, as one
// refused after decoding is; one within them is answered as before.
func TestGRPCCodecBudget(t *testing.T) {
	var seen []*pb.ModelInferRequest
	keep := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*pb.ModelInferRequest); ok {
			seen = append(seen, r) // kept after the handler returns, as a logger may
		}
		return h(ctx, req)
	}
	s := startServer(t, false, server.Config{
		RequestLimits:    protocol.Limits{MaxElements: 4},
		GRPCInterceptors: []grpc.UnaryServerInterceptor{keep},
	})
	c := pb.NewGRPCInferenceServiceClient(s.grpc)
	small := &pb.ModelInferRequest{ModelName: "sum2", Id: "a", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP32", Shape: []int64{2, 2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4}}}}}
	big := &pb.ModelInferRequest{ModelName: "sum2", Id: "b", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP32", Shape: []int64{1, 5}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4, 5}}}}}

	res, err := c.ModelInfer(t.Context(), small)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetOutputs()[0].GetContents().GetFp64Contents(); len(got) != 2 || got[0] != 3 || got[1] != 7 || res.GetId() != "a" {
		t.Fatalf("ModelInfer = %v", res)
	}
	_, err = c.ModelInfer(t.Context(), big)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-request-elements") {
		t.Fatalf("over the limits: %v, want ResourceExhausted naming --max-request-elements", err)
	}
	if len(seen) != 2 || !proto.Equal(seen[0], small) || seen[1].GetModelName() != "sum2" {
		t.Fatalf("interceptor saw %v", seen)
	}
	code, _, body := do(t, http.MethodGet, s.http+"/metrics", nil, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `ferry_requests_total{code="413",model="sum2",protocol="v2-grpc"} 1`) {
		t.Fatalf("metrics do not count the refused request under 413:\n%s", body)
	}
}
