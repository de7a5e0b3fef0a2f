package router

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
)

// v2Backend is a real V2 gRPC server on loopback serving a sum model "m".
func v2Backend(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runtimetest.WriteModel(dir, 2); err != nil {
		t.Fatal(err)
	}
	repo := repository.New(repository.Config{Loader: runtime.NewRegistry(runtimetest.Format)})
	repo.Add(repository.Source{Name: "m", Dir: dir})
	if err := repo.Load(t.Context(), "m"); err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(s, v2.NewGRPCServer(v2.NewService(v2.Config{Repository: repo})))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestGRPCProxy(t *testing.T) {
	be := v2Backend(t)
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "default", Components: map[string]*Component{
		Predictor: {Targets: []Target{{Revision: "m-predictor-00001", Percent: 100, Latest: true, GRPCBackends: []string{be}}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	p := NewGRPCProxy(r)
	defer p.Close()
	srv := p.Server()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)

	req := &pb.ModelInferRequest{ModelName: "m", Id: "x", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{2, 3}}}}}
	var hdr metadata.MD
	res, err := c.ModelInfer(t.Context(), req, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if res.Id != "x" || res.Outputs[0].Contents.Fp64Contents[0] != 5 {
		t.Fatalf("response %v", res)
	}
	if got := hdr.Get("ferry-revision"); len(got) != 1 || got[0] != "m-predictor-00001" {
		t.Fatalf("revision header %v", got)
	}
	md, err := c.ModelMetadata(t.Context(), &pb.ModelMetadataRequest{Name: "m"})
	if err != nil || md.Name != "m" {
		t.Fatalf("metadata via proxy: %v %v", md, err)
	}
	// Backend errors pass through with their code; unknown models are NOT_FOUND.
	_, err = c.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1, 3}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 2, 3}}}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("backend error: %v", err)
	}
	_, err = c.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown model: %v", err)
	}
	_, err = c.ServerLive(context.Background(), &pb.ServerLiveRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("server-level call without authority: %v", err)
	}
	// The repository API never passes the ingress: an unload there would
	// take the model out of service behind the control plane's back.
	if _, err := c.RepositoryModelUnload(t.Context(), &pb.RepositoryModelUnloadRequest{ModelName: "m"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unload through the ingress: %v", err)
	}
	if _, err := c.RepositoryIndex(t.Context(), &pb.RepositoryIndexRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("index through the ingress: %v", err)
	}
	if _, err := c.ModelInfer(t.Context(), req); err != nil {
		t.Fatalf("model unloaded through the ingress: %v", err)
	}
}
