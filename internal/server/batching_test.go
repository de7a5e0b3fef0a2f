package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/batcher"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
	"github.com/ferryserve/ferry/internal/server"
)

type batchingLoader struct {
	reg *runtime.Registry
	cfg batcher.Config
}

func (l batchingLoader) Load(ctx context.Context, dir, format string) (runtime.Model, string, error) {
	m, f, err := l.reg.Load(ctx, dir, format)
	if err != nil {
		return nil, f, err
	}
	return batcher.New(m, l.cfg), f, nil
}

// TestBatchingAcrossProtocols sends V1, V2 REST and V2 gRPC requests at once
// and checks they were merged into one model call and each got its own rows.
func TestBatchingAcrossProtocols(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runtimetest.WriteModel(dir, 2); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var batches []string
	cfg := batcher.Config{MaxBatchSize: 3, MaxLatency: 10 * time.Second, MaxConcurrent: -1, OnBatch: func(rows, callers int) {
		mu.Lock()
		batches = append(batches, fmt.Sprintf("%d/%d", rows, callers))
		mu.Unlock()
	}}
	repo := repository.New(repository.Config{Loader: batchingLoader{runtime.NewRegistry(runtimetest.Format), cfg}})
	repo.Add(repository.Source{Name: "m", Dir: dir})
	if err := repo.Load(t.Context(), "m"); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done; repo.Close() }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	base := "http://" + srv.HTTPAddr()

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		code, _, body := do(t, "POST", base+"/v1/models/m:predict", []byte(`{"instances":[[1,2]]}`), nil)
		if code != 200 || string(body) != `{"predictions":[3]}` {
			t.Errorf("v1: %d %s", code, body)
		}
	}()
	go func() {
		defer wg.Done()
		code, _, body := do(t, "POST", base+"/v2/models/m/infer", []byte(`{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP64","data":[10,20]}]}`), nil)
		var r struct{ Outputs []struct{ Data []float64 } }
		if code != 200 || json.Unmarshal(body, &r) != nil || r.Outputs[0].Data[0] != 30 {
			t.Errorf("v2: %d %s", code, body)
		}
	}()
	go func() {
		defer wg.Done()
		res, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(t.Context(), &pb.ModelInferRequest{
			ModelName: "m",
			Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input-0", Datatype: "FP64", Shape: []int64{1, 2},
				Contents: &pb.InferTensorContents{Fp64Contents: []float64{100, 200}}}},
		})
		if err != nil || res.Outputs[0].Contents.Fp64Contents[0] != 300 {
			t.Errorf("grpc: %v %v", res, err)
		}
	}()
	wg.Wait()
	if got := strings.Join(batches, ","); got != "3/3" {
		t.Fatalf("batches %q, want one merged call of 3 rows from 3 callers", got)
	}
}
