// Command bare is the baseline of `make bench`: the thinnest server that
// still does a real request's wire work. It decodes each request with the
// decoders Ferry uses (v2.DecodeRequest for V2 REST, v2.FromProto for V2
// gRPC, the v1 handler's instance decoding for V1) and answers a constant
// prediction per row, encoded with Ferry's encoders. It has no metrics, no
// in-flight middleware and no model evaluation, so its throughput is the
// limit of the HTTP/gRPC stack plus the codecs on this machine; Ferry's
// throughput is reported as a fraction of it.
//
//	go run ./bench/bare -host 127.0.0.1 -http-port 9080 -grpc-port 9081
//
// Any model name is accepted. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	v1 "github.com/ferryserve/ferry/internal/protocol/v1"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// answer is the constant every row is predicted to be.
const answer = 0.5

// maxBody bounds a request body, as ferry serve's default does.
const maxBody = 100 << 20

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "address to bind both listeners to")
	httpPort := fs.Int("http-port", 9080, "HTTP port (V1 and V2 REST)")
	grpcPort := fs.Int("grpc-port", 9081, "gRPC port (V2 ModelInfer)")
	model := fs.String("model-name", "bench", "model name the V1 route answers for (V2 routes take any name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	repo, err := constantRepository(ctx, *model)
	if err != nil {
		return err
	}
	defer repo.Close()

	httpLn, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*httpPort)))
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	grpcLn, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*grpcPort)))
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("grpc listener: %w", err)
	}
	httpSrv := &http.Server{Handler: newMux(repo), ReadHeaderTimeout: 10 * time.Second}
	grpcSrv := grpc.NewServer(grpc.MaxRecvMsgSize(maxBody))
	pb.RegisterGRPCInferenceServiceServer(grpcSrv, inferServer{})
	return serve(ctx, httpSrv, httpLn, grpcSrv, grpcLn)
}

// serve runs both servers until ctx ends or one fails, then stops both and
// waits for their goroutines.
func serve(ctx context.Context, hs *http.Server, hl net.Listener, gs *grpc.Server, gl net.Listener) error {
	errc := make(chan error, 2)
	go func() { errc <- ignore(hs.Serve(hl), http.ErrServerClosed) }()
	go func() { errc <- ignore(gs.Serve(gl), grpc.ErrServerStopped) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	gs.Stop()
	for range 2 - btoi(err != nil) {
		if e := <-errc; err == nil {
			err = e
		}
	}
	return err
}

func ignore(err, benign error) error {
	if errors.Is(err, benign) {
		return nil
	}
	return err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// newMux routes V2 infer to the bare handler and everything under /v1 to
// Ferry's V1 handler over a repository of constant models: the V1 instance
// decoder is not exported, and the handler is the only way to reach it.
func newMux(repo *repository.Repository) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/{name}/infer", inferREST)
	v1.New(v1.Config{Repository: repo, MaxBodyBytes: maxBody}).Register(mux)
	return mux
}

// inferREST decodes a V2 JSON (or binary-extension) request with
// v2.DecodeRequest and answers the constant output.
func inferREST(w http.ResponseWriter, r *http.Request) {
	body, err := v2.ReadBody(r, maxBody, nil)
	if err != nil {
		v2.WriteError(w, err)
		return
	}
	jsonLen := -1
	if h := r.Header.Get(v2.HeaderInferenceLength); h != "" {
		if jsonLen, err = strconv.Atoi(h); err != nil || jsonLen < 0 {
			v2.WriteError(w, fmt.Errorf("%w: bad %s header %q", protocol.ErrBadRequest, v2.HeaderInferenceLength, h))
			return
		}
	}
	req, err := v2.DecodeRequest(body, jsonLen)
	if err != nil {
		v2.WriteError(w, err)
		return
	}
	resp := &v2.InferResponse{ModelName: r.PathValue("name"), ID: req.ID, Outputs: []*tensor.Tensor{constant(req.Inputs[0])}}
	js, _ := v2.EncodeResponse(make([]byte, 0, 512), nil, resp, nil)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(js)))
	_, _ = w.Write(js)
}

// inferServer is a V2 gRPC service whose ModelInfer decodes with
// v2.FromProto and answers the constant output; the other RPCs are
// unimplemented.
type inferServer struct {
	pb.UnimplementedGRPCInferenceServiceServer
}

func (inferServer) ModelInfer(_ context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	req, err := v2.FromProto(in)
	if err != nil {
		_, code := protocol.Status(err)
		return nil, status.Error(code, err.Error())
	}
	resp := &v2.InferResponse{ModelName: in.GetModelName(), ID: req.ID, Outputs: []*tensor.Tensor{constant(req.Inputs[0])}}
	return v2.ToProto(resp, len(in.GetRawInputContents()) > 0), nil
}

// constant is the output "predict": one FP32 answer per row of in.
func constant(in *tensor.Tensor) *tensor.Tensor {
	rows, _ := in.Rows()
	if len(in.Shape) < 2 {
		rows = 1
	}
	data := make([]float32, max(rows, 0))
	for i := range data {
		data[i] = answer
	}
	return &tensor.Tensor{Name: "predict", Datatype: tensor.FP32, Shape: []int64{int64(len(data))}, Data: data}
}

// constantModel is a runtime.Model that predicts answer for every row.
type constantModel struct{}

var _ runtime.Model = constantModel{}

func (constantModel) Metadata() runtime.Metadata {
	return runtime.Metadata{
		Platform: "constant",
		Inputs:   []runtime.TensorMeta{{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{-1, -1}}},
		Outputs:  []runtime.TensorMeta{{Name: "predict", Datatype: tensor.FP32, Shape: []int64{-1}}},
	}
}

func (constantModel) Predict(_ context.Context, req *runtime.Request) (*runtime.Response, error) {
	if len(req.Inputs) == 0 {
		return nil, fmt.Errorf("%w: request has no inputs", runtime.ErrInvalidInput)
	}
	return &runtime.Response{Outputs: []*tensor.Tensor{constant(req.Inputs[0])}}, nil
}

func (constantModel) Close() error { return nil }

// constantLoader loads a constantModel whatever the directory holds.
type constantLoader struct{}

func (constantLoader) Load(context.Context, string, string) (runtime.Model, string, error) {
	return constantModel{}, "constant", nil
}

// constantRepository returns a repository holding name as a loaded constant
// model. Its source directory is an empty temporary one.
func constantRepository(ctx context.Context, name string) (*repository.Repository, error) {
	dir, err := os.MkdirTemp("", "ferry-bare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // the constant loader never reads it after Load
	repo := repository.New(repository.Config{Loader: constantLoader{}})
	repo.Add(repository.Source{Name: name, Dir: dir})
	if err := repo.LoadAll(ctx, 1); err != nil {
		return nil, fmt.Errorf("load constant model: %w", err)
	}
	return repo, nil
}
