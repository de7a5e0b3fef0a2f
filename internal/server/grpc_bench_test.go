package server_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/cputime"
	"github.com/ferryserve/ferry/internal/protocol"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/tensor"
)

// BenchmarkGRPCVsBare sends batch-1 ModelInfer calls (the request of
// bench/payloads/grpc-b1.json: 20 FP32 features in fp32_contents) to
// Ferry's full gRPC server, wired as ferry serve wires it (metrics,
// in-flight gauge, repository guard, request limits), and to a bare
// grpc-go unary handler in the same process, alternating in chunks. The
// bare handler is bench/bare's: v2.FromProto, a constant answer, v2.ToProto
// and grpc-go's default codec, nothing else.
//
// ferry-cpu-ns/op and bare-cpu-ns/op are the process's CPU time per call
// (client included) on each side; bare/ferry is their ratio, which load
// from other programs disturbs less than either number. Model "bench" is
// bench/model's 100-tree XGBoost model; "sum" is a model that only sums the
// features, so that the difference is the serving stack's.
//
//	go test -run '^$' -bench BenchmarkGRPCVsBare -benchmem -cpu 1 ./internal/server/
func BenchmarkGRPCVsBare(b *testing.B) {
	for _, model := range []string{"bench", "sum"} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/conc=%d", model, conc), func(b *testing.B) {
				benchVsBare(b, model, conc)
			})
		}
	}
}

// benchVsBare alternates chunks of calls to Ferry and to bare, each chunk
// spread over conc goroutines.
func benchVsBare(b *testing.B, model string, conc int) {
	ferry := startFerryGRPC(b, model)
	bare := startBareGRPC(b)
	req := benchRequest("bench")
	var failed atomic.Value
	call := func(c pb.GRPCInferenceServiceClient) {
		resp, err := c.ModelInfer(context.Background(), req)
		if err == nil && len(resp.GetOutputs()) != 1 {
			err = fmt.Errorf("outputs: %v", resp.GetOutputs())
		}
		if err != nil {
			failed.CompareAndSwap(nil, err)
		}
	}
	run := func(c pb.GRPCInferenceServiceClient, k int) {
		if conc == 1 {
			for range k {
				call(c)
			}
			return
		}
		var wg sync.WaitGroup
		for g := range conc {
			n := k / conc
			if g < k%conc {
				n++
			}
			wg.Go(func() {
				for range n {
					call(c)
				}
			})
		}
		wg.Wait()
	}
	run(ferry, 200) // warm connections, pools and the model
	run(bare, 200)
	chunk := 64 * conc
	var ferryCPU, bareCPU int64
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += chunk {
		k := min(chunk, b.N-n)
		t0 := int64(cputime.Process())
		run(ferry, k)
		t1 := int64(cputime.Process())
		run(bare, k)
		t2 := int64(cputime.Process())
		ferryCPU += t1 - t0
		bareCPU += t2 - t1
	}
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	f := float64(ferryCPU) / float64(b.N)
	r := float64(bareCPU) / float64(b.N)
	b.ReportMetric(f, "ferry-cpu-ns/op")
	b.ReportMetric(r, "bare-cpu-ns/op")
	b.ReportMetric(r/f, "bare/ferry")
}

func benchRequest(model string) *pb.ModelInferRequest {
	x := []float32{-1.022142, -0.171071, -0.132256, 0.039988, -1.211855, 0.701139, -0.213774, -0.565699, -2.473007, -1.149521,
		-0.151826, -0.004661, -0.440382, -0.304771, -0.548335, 0.242267, -0.354071, -1.069679, 1.608595, -0.264892}
	return &pb.ModelInferRequest{ModelName: model, Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "input-0", Datatype: "FP32", Shape: []int64{1, 20},
		Contents: &pb.InferTensorContents{Fp32Contents: x},
	}}}
}

// startFerryGRPC runs startBenchServer's server and returns a gRPC client.
func startFerryGRPC(b *testing.B, model string) pb.GRPCInferenceServiceClient {
	b.Helper()
	srv := startBenchServer(b, model)
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return pb.NewGRPCInferenceServiceClient(conn)
}

// startBenchServer runs server.New over one model named "bench" with the
// interceptors ferry serve installs by default: model "bench" is
// bench/model's 100-tree XGBoost model, any other a model that sums its 20
// features.
func startBenchServer(b *testing.B, model string) *server.Server {
	b.Helper()
	reg := runtime.NewRegistry(xgboost.Format, runtimetest.Format)
	dir := filepath.Join(b.TempDir(), "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	switch model {
	case "bench":
		js, err := os.ReadFile("../../bench/model/model.json")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.json"), js, 0o644); err != nil {
			b.Fatal(err)
		}
	default:
		if err := runtimetest.WriteModel(dir, 20); err != nil {
			b.Fatal(err)
		}
	}
	repo := repository.New(repository.Config{Loader: reg})
	repo.Add(repository.Source{Name: "bench", Dir: dir})
	if err := repo.LoadAll(b.Context(), 1); err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Repository: repo,
		GRPCInterceptors: []grpc.UnaryServerInterceptor{protocol.LimitsInterceptor(protocol.Limits{})},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("server run: %v", err)
		}
		repo.Close()
	})
	return srv
}

// bareServer is bench/bare's gRPC service.
type bareServer struct {
	pb.UnimplementedGRPCInferenceServiceServer
}

func (bareServer) ModelInfer(_ context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	req, err := v2.FromProto(in)
	if err != nil {
		_, code := protocol.Status(err)
		return nil, status.Error(code, err.Error())
	}
	rows, _ := req.Inputs[0].Rows()
	data := make([]float32, max(rows, 1))
	for i := range data {
		data[i] = 0.5
	}
	out := &tensor.Tensor{Name: "predict", Datatype: tensor.FP32, Shape: []int64{int64(len(data))}, Data: data}
	resp := &v2.InferResponse{ModelName: in.GetModelName(), ID: req.ID, Outputs: []*tensor.Tensor{out}}
	return v2.ToProto(resp, len(in.GetRawInputContents()) > 0), nil
}

func startBareGRPC(b *testing.B) pb.GRPCInferenceServiceClient {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(100 << 20))
	pb.RegisterGRPCInferenceServiceServer(gs, bareServer{})
	done := make(chan error, 1)
	go func() { done <- gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-done; err != nil {
			b.Errorf("bare serve: %v", err)
		}
	})
	return pb.NewGRPCInferenceServiceClient(conn)
}
