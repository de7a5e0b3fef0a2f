package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/server"
)

// TestPanicsFailOneRequest: a model whose code panics — on the request's
// goroutine or on a worker goroutine of its own — fails that request with
// 500 / INTERNAL, over REST and over both gRPC transports, and the server
// goes on serving; so does a panic elsewhere in a gRPC call's chain, which
// neither gRPC transport recovers by itself.
func TestPanicsFailOneRequest(t *testing.T) {
	for _, transport := range []string{server.TransportFerry, server.TransportGRPCGo} {
		t.Run(transport, func(t *testing.T) {
			faulty := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if strings.HasSuffix(info.FullMethod, "/ServerLive") {
					panic("interceptor fault")
				}
				return h(ctx, req)
			}
			s := startServer(t, false, server.Config{GRPCTransport: transport, GRPCInterceptors: []grpc.UnaryServerInterceptor{faulty}})
			client := pb.NewGRPCInferenceServiceClient(s.grpc)
			ok := func() {
				t.Helper()
				code, _, body := do(t, http.MethodPost, s.http+"/v2/models/sum2/infer",
					[]byte(`{"inputs":[{"name":"input-0","datatype":"FP64","shape":[1,2],"data":[1,2]}]}`), nil)
				if code != http.StatusOK {
					t.Fatalf("a plain request after the panics: %d %s", code, body)
				}
				if _, err := client.ModelInfer(t.Context(), inferRequest(nil)); err != nil {
					t.Fatalf("a plain gRPC call after the panics: %v", err)
				}
			}
			for _, where := range []string{"predict", "worker"} {
				code, _, body := do(t, http.MethodPost, s.http+"/v2/models/sum2/infer",
					[]byte(`{"parameters":{"panic":"`+where+`"},"inputs":[{"name":"input-0","datatype":"FP64","shape":[1,2],"data":[1,2]}]}`), nil)
				if code != http.StatusInternalServerError || !strings.Contains(string(body), "model code panicked") {
					t.Errorf("REST, panic on %s: %d %s, want 500 naming the panic", where, code, body)
				}
				_, err := client.ModelInfer(t.Context(), inferRequest(map[string]*pb.InferParameter{
					"panic": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: where}}}))
				if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "model code panicked") {
					t.Errorf("gRPC, panic on %s: %v, want INTERNAL naming the panic", where, err)
				}
				ok()
			}
			_, err := client.ServerLive(t.Context(), &pb.ServerLiveRequest{})
			if status.Code(err) != codes.Internal {
				t.Errorf("a call whose interceptor panicked: %v, want INTERNAL", err)
			}
			ok()
		})
	}
}

func inferRequest(params map[string]*pb.InferParameter) *pb.ModelInferRequest {
	return &pb.ModelInferRequest{
		ModelName:  "sum2",
		Parameters: params,
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{
			Name: "input-0", Datatype: "FP64", Shape: []int64{1, 2},
			Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 2}},
		}},
	}
}
