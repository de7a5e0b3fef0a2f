package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
	"github.com/ferryserve/ferry/internal/server"
)

// testServer is a real server on loopback serving:
//   - "sum3": versions 1 (3 features) and 2 (3 features, default);
//   - "sum2": unversioned, 2 features;
//   - "broken": a corrupt model file (FAILED).
type testServer struct {
	http string
	grpc *grpc.ClientConn
	repo *repository.Repository
	// stop cancels the server and waits for Run to return; idempotent.
	stop func() error
}

func startServer(t testing.TB, withBroken bool, cfg server.Config) *testServer {
	t.Helper()
	root := t.TempDir()
	mk := func(dir string, n int) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtimetest.WriteModel(dir, n); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(root, "sum3", "1"), 3)
	mk(filepath.Join(root, "sum3", "2"), 3)
	mk(filepath.Join(root, "sum2"), 2)
	if withBroken {
		if err := os.MkdirAll(filepath.Join(root, "broken"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "broken", "model.sum"), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := runtime.NewRegistry(runtimetest.Format)
	srcs, err := repository.Discover(root, "", "", reg.HasModelFile)
	if err != nil {
		t.Fatal(err)
	}
	repo := repository.New(repository.Config{Loader: reg})
	for _, s := range srcs {
		repo.Add(s)
	}
	_ = repo.LoadAll(t.Context(), 2)

	cfg.HTTPAddr, cfg.GRPCAddr, cfg.Repository = "127.0.0.1:0", "127.0.0.1:0", repo
	if cfg.HTTPEngine == "" {
		cfg.HTTPEngine = testEngine
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		conn.Close()
		if err := stop(); err != nil {
			t.Errorf("server run: %v", err)
		}
		repo.Close()
	})
	return &testServer{http: "http://" + srv.HTTPAddr(), grpc: conn, repo: repo, stop: stop}
}

func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestRESTEndpoints(t *testing.T) {
	s := startServer(t, true, server.Config{})
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		wantCode int
		wantBody string // JSON the response must equal (ignored if empty)
		contains string // substring the response must contain
	}{
		{"live", "GET", "/v2/health/live", "", 200, `{"live":true}`, ""},
		{"ready false with a failed model", "GET", "/v2/health/ready", "", 503, `{"ready":false}`, ""},
		{"server metadata", "GET", "/v2", "", 200, `{"name":"ferry","version":"","extensions":["model_repository","binary_tensor_data"]}`, ""},
		{"list", "GET", "/v2/models", "", 200, `{"models":["broken","sum2","sum3"]}`, ""},
		{"model metadata", "GET", "/v2/models/sum2", "", 200,
			`{"name":"sum2","platform":"ferry_sum","inputs":[{"name":"input-0","datatype":"FP64","shape":[-1,2]}],"outputs":[{"name":"predict","datatype":"FP64","shape":[-1]},{"name":"echo","datatype":"FP64","shape":[-1,2]}]}`, ""},
		{"versioned metadata", "GET", "/v2/models/sum3/versions/1", "", 200, "", `"versions":["1","2"]`},
		{"unknown version metadata", "GET", "/v2/models/sum3/versions/7", "", 404, "", `has no version \"7\"`},
		{"unknown model metadata", "GET", "/v2/models/nope", "", 404, "", `model not found`},
		{"model ready", "GET", "/v2/models/sum3/ready", "", 200, `{"name":"sum3","ready":true}`, ""},
		{"version ready", "GET", "/v2/models/sum3/versions/2/ready", "", 200, `{"name":"sum3","ready":true}`, ""},
		{"failed model not ready", "GET", "/v2/models/broken/ready", "", 503, `{"name":"broken","ready":false}`, ""},
		{"infer nested", "POST", "/v2/models/sum3/infer", `{"id":"a1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}]}`, 200,
			`{"model_name":"sum3","model_version":"2","id":"a1","outputs":[{"name":"predict","datatype":"FP64","shape":[2],"data":[6,15]}]}`, ""},
		{"infer flat, data before shape", "POST", "/v2/models/sum3/versions/1/infer", `{"inputs":[{"data":[1,2,3],"name":"x","datatype":"INT32","shape":[1,3]}]}`, 200,
			`{"model_name":"sum3","model_version":"1","id":"","outputs":[{"name":"predict","datatype":"FP64","shape":[1],"data":[6]}]}`, ""},
		{"null is NaN", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[null,1]}]}`, 200,
			`{"model_name":"sum2","id":"","outputs":[{"name":"predict","datatype":"FP64","shape":[1],"data":[null]}]}`, ""},
		{"output filter", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}],"outputs":[{"name":"echo"}]}`, 200,
			`{"model_name":"sum2","id":"","outputs":[{"name":"echo","datatype":"FP64","shape":[1,2],"data":[1,2]}]}`, ""},
		{"unknown output", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}],"outputs":[{"name":"proba"}]}`, 400, "", `has no output \"proba\"`},
		{"shape mismatch", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[1,2,3]}]}`, 400, "", `shape [2 2] needs 4 elements, data has 3`},
		{"wrong datatype", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"INT8","data":[1,300]}]}`, 400, "", `expected an INT8`},
		{"unknown datatype", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FLOAT","data":[1,2]}]}`, 400, "", `unknown datatype \"FLOAT\"`},
		{"wrong feature count", "POST", "/v2/models/sum2/infer", `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, "", `the model expects 2`},
		{"malformed json", "POST", "/v2/models/sum2/infer", `{"inputs":[`, 400, "", `malformed JSON`},
		{"missing inputs", "POST", "/v2/models/sum2/infer", `{}`, 400, "", `\"inputs\" is required`},
		{"unknown model infer", "POST", "/v2/models/nope/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 404, "", `model not found`},
		{"failed model infer", "POST", "/v2/models/broken/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 503, "", `FAILED`},
		{"index", "POST", "/v2/repository/index", `{}`, 200, "", `{"name":"sum3","version":"2","state":"READY","reason":""}`},
		{"index ready only", "POST", "/v2/repository/index", `{"ready":true}`, 200, "", `"sum2"`},
		{"unload unknown", "POST", "/v2/repository/models/nope/unload", ``, 404, "", `model not found`},
		{"v1 list", "GET", "/v1/models", "", 200, `{"models":["broken","sum2","sum3"]}`, ""},
		{"v1 status", "GET", "/v1/models/sum2", "", 200, `{"name":"sum2","ready":true}`, ""},
		{"v1 predict", "POST", "/v1/models/sum2:predict", `{"instances":[[1,2],[3,4]]}`, 200, `{"predictions":[3,7]}`, ""},
		{"v1 predict inputs", "POST", "/v1/models/sum2:predict", `{"inputs":[[1,null]]}`, 200, `{"predictions":[null]}`, ""},
		{"v1 bad instances", "POST", "/v1/models/sum2:predict", `{"instances":{"a":1}}`, 400, "", `must be a list of rows`},
		{"v1 ragged rows", "POST", "/v1/models/sum2:predict", `{"instances":[[1,2],[3]]}`, 400, "", `lists of numbers`},
		{"v1 wrong features", "POST", "/v1/models/sum2:predict", `{"instances":[[1,2,3]]}`, 400, "", `the model expects 2`},
		{"v1 unknown model", "POST", "/v1/models/nope:predict", `{"instances":[[1]]}`, 404, "", `model not found`},
		{"v1 explain", "POST", "/v1/models/sum2:explain", `{"instances":[[1,2]]}`, 501, "", `no explainer`},
		{"metrics", "GET", "/metrics", "", 200, "", `ferry_requests_total`},
		{"models ready gauge", "GET", "/metrics", "", 200, "", "ferry_models_ready 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, tc.method, s.http+tc.path, []byte(tc.body), nil)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", code, tc.wantCode, body)
			}
			if tc.wantBody != "" {
				assertJSONEqual(t, body, tc.wantBody)
			}
			if tc.contains != "" && !strings.Contains(string(body), tc.contains) {
				t.Fatalf("body %s does not contain %s", body, tc.contains)
			}
			if code >= 400 && !strings.HasSuffix(tc.path, "ready") {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Fatalf("error body %s is not {\"error\": ...}", body)
				}
			}
		})
	}
}

func assertJSONEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("body\n got %s\nwant %s", gb, wb)
	}
}

func TestRepositoryLoadUnloadREST(t *testing.T) {
	s := startServer(t, false, server.Config{})
	code, _, _ := do(t, "GET", s.http+"/v2/health/ready", nil, nil)
	if code != 200 {
		t.Fatalf("ready = %d before unload", code)
	}
	code, _, body := do(t, "POST", s.http+"/v2/repository/models/sum2/unload", nil, nil)
	if code != 200 {
		t.Fatalf("unload: %d %s", code, body)
	}
	assertJSONEqual(t, body, `{"name":"sum2","unload":true}`)
	code, _, body = do(t, "POST", s.http+"/v2/models/sum2/infer", []byte(`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`), nil)
	if code != 503 || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Fatalf("infer after unload: %d %s", code, body)
	}
	code, _, body = do(t, "POST", s.http+"/v2/repository/index", nil, nil)
	if code != 200 || !strings.Contains(string(body), `{"name":"sum2","state":"UNAVAILABLE","reason":"unloaded"}`) {
		t.Fatalf("index after unload: %d %s", code, body)
	}
	code, _, body = do(t, "POST", s.http+"/v2/repository/models/sum2/load", nil, nil)
	if code != 200 {
		t.Fatalf("load: %d %s", code, body)
	}
	assertJSONEqual(t, body, `{"name":"sum2","load":true}`)
	code, _, body = do(t, "POST", s.http+"/v2/models/sum2/infer", []byte(`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`), nil)
	if code != 200 {
		t.Fatalf("infer after load: %d %s", code, body)
	}
}

// binaryRequest builds a V2 body whose input x (FP32 [rows, 2]) travels as
// binary data, asking for binary outputs.
func binaryRequest(vals []float32, rows int) ([]byte, int) {
	js := []byte(`{"inputs":[{"name":"x","shape":[` + strconv.Itoa(rows) + `,2],"datatype":"FP32","parameters":{"binary_data_size":` + strconv.Itoa(4*len(vals)) + `}}],"outputs":[{"name":"predict","parameters":{"binary_data":true}}]}`)
	body := append([]byte(nil), js...)
	for _, v := range vals {
		body = binary.LittleEndian.AppendUint32(body, math.Float32bits(v))
	}
	return body, len(js)
}

func TestBinaryExtension(t *testing.T) {
	s := startServer(t, false, server.Config{})
	body, jl := binaryRequest([]float32{1, 2, 3.5, 4}, 2)
	code, hdr, resp := do(t, "POST", s.http+"/v2/models/sum2/infer", body, map[string]string{"Inference-Header-Content-Length": strconv.Itoa(jl)})
	if code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	n, err := strconv.Atoi(hdr.Get("Inference-Header-Content-Length"))
	if err != nil || n > len(resp) {
		t.Fatalf("bad Inference-Header-Content-Length %q", hdr.Get("Inference-Header-Content-Length"))
	}
	assertJSONEqual(t, resp[:n], `{"model_name":"sum2","id":"","outputs":[{"name":"predict","datatype":"FP64","shape":[2],"parameters":{"binary_data_size":16}}]}`)
	bin := resp[n:]
	if len(bin) != 16 {
		t.Fatalf("binary part is %d bytes, want 16", len(bin))
	}
	got := []float64{math.Float64frombits(binary.LittleEndian.Uint64(bin)), math.Float64frombits(binary.LittleEndian.Uint64(bin[8:]))}
	if got[0] != 3 || got[1] != 7.5 {
		t.Fatalf("binary outputs %v, want [3 7.5]", got)
	}

	// Truncated binary payload, and a lying header.
	code, _, resp = do(t, "POST", s.http+"/v2/models/sum2/infer", body[:len(body)-3], map[string]string{"Inference-Header-Content-Length": strconv.Itoa(jl)})
	if code != 400 || !strings.Contains(string(resp), "truncated") {
		t.Fatalf("truncated: %d %s", code, resp)
	}
	code, _, resp = do(t, "POST", s.http+"/v2/models/sum2/infer", body, map[string]string{"Inference-Header-Content-Length": "999999"})
	if code != 400 {
		t.Fatalf("lying header: %d %s", code, resp)
	}
}

func TestBodyLimit(t *testing.T) {
	s := startServer(t, false, server.Config{MaxBodyBytes: 1024})
	big := `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}],"pad":"` + strings.Repeat("a", 2048) + `"}`
	for _, path := range []string{"/v2/models/sum2/infer", "/v1/models/sum2:predict"} {
		code, _, body := do(t, "POST", s.http+path, []byte(big), nil)
		if code != 413 {
			t.Fatalf("%s: status %d, want 413: %s", path, code, body)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	s := startServer(t, false, server.Config{RequestTimeout: 50 * time.Millisecond})
	code, _, body := do(t, "POST", s.http+"/v2/models/sum2/infer", []byte(`{"parameters":{"sleep_ms":5000},"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`), nil)
	if code != 504 {
		t.Fatalf("status %d, want 504: %s", code, body)
	}
}

// TestGRPC runs over both gRPC transports of ferry serve.
func TestGRPC(t *testing.T) {
	for _, tr := range []string{server.TransportFerry, server.TransportGRPCGo} {
		t.Run(tr, func(t *testing.T) { testGRPC(t, tr) })
	}
}

func testGRPC(t *testing.T, transport string) {
	s := startServer(t, true, server.Config{GRPCTransport: transport})
	c := pb.NewGRPCInferenceServiceClient(s.grpc)
	ctx := t.Context()

	live, err := c.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Fatalf("ServerLive = %v, %v", live, err)
	}
	ready, err := c.ServerReady(ctx, &pb.ServerReadyRequest{})
	if err != nil || ready.Ready {
		t.Fatalf("ServerReady = %v, %v; want false (broken model)", ready, err)
	}
	mr, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "sum3", Version: "1"})
	if err != nil || !mr.Ready {
		t.Fatalf("ModelReady = %v, %v", mr, err)
	}
	sm, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
	if err != nil || sm.Name != "ferry" || len(sm.Extensions) != 2 {
		t.Fatalf("ServerMetadata = %v, %v", sm, err)
	}
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "sum3"})
	if err != nil || md.Platform != "ferry_sum" || len(md.Versions) != 2 || md.Inputs[0].Shape[1] != 3 || md.Inputs[0].Datatype != "FP64" {
		t.Fatalf("ModelMetadata = %v, %v", md, err)
	}

	// Typed contents in, typed contents out.
	res, err := c.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName: "sum3", Id: "g1",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3},
			Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4, 5, 6}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Id != "g1" || res.ModelVersion != "2" || len(res.Outputs) != 1 || res.Outputs[0].Name != "predict" {
		t.Fatalf("ModelInfer = %v", res)
	}
	if got := res.Outputs[0].Contents.Fp64Contents; len(got) != 2 || got[0] != 6 || got[1] != 15 {
		t.Fatalf("outputs %v, want [6 15]", got)
	}

	// Raw contents in, raw contents out (Triton's client does this).
	raw := []byte{}
	for _, v := range []float32{1.5, 2.5} {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	res, err = c.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName:        "sum2",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}}},
		Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "predict"}},
		RawInputContents: [][]byte{raw},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RawOutputContents) != 1 || math.Float64frombits(binary.LittleEndian.Uint64(res.RawOutputContents[0])) != 4 {
		t.Fatalf("raw outputs %v", res.RawOutputContents)
	}

	// Errors carry the same codes as REST.
	errCases := []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
	}{
		{"unknown model", &pb.ModelInferRequest{ModelName: "nope", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1}}}}}, codes.NotFound},
		{"not ready", &pb.ModelInferRequest{ModelName: "broken", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1}}}}}, codes.Unavailable},
		{"shape mismatch", &pb.ModelInferRequest{ModelName: "sum2", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1}}}}}, codes.InvalidArgument},
		{"wrong contents field", &pb.ModelInferRequest{ModelName: "sum2", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2}}}}}, codes.InvalidArgument},
		{"raw count mismatch", &pb.ModelInferRequest{ModelName: "sum2", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}}}, RawInputContents: [][]byte{raw, raw}}, codes.InvalidArgument},
		{"truncated raw", &pb.ModelInferRequest{ModelName: "sum2", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}}}, RawInputContents: [][]byte{raw[:5]}}, codes.InvalidArgument},
		{"unknown version", &pb.ModelInferRequest{ModelName: "sum3", ModelVersion: "9", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}}}}}, codes.NotFound},
	}
	for _, tc := range errCases {
		_, err := c.ModelInfer(ctx, tc.req)
		if status.Code(err) != tc.code {
			t.Errorf("%s: code %v (%v), want %v", tc.name, status.Code(err), err, tc.code)
		}
	}

	// Repository RPCs, in both the extension's and KServe's request shapes.
	idx, err := c.RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
	if err != nil || len(idx.Models) != 4 {
		t.Fatalf("RepositoryIndex = %v, %v; want 4 rows (broken, sum2, sum3 v1 and v2)", idx, err)
	}
	if _, err := c.RepositoryModelUnload(ctx, &pb.RepositoryModelUnloadRequest{ModelName: "sum2"}); err != nil {
		t.Fatal(err)
	}
	if mr, _ := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "sum2"}); mr.GetReady() {
		t.Fatal("sum2 still ready after unload")
	}
	lr, err := c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{RepositoryName: "sum2"})
	if err != nil || !lr.IsLoaded || lr.ModelName != "sum2" {
		t.Fatalf("RepositoryModelLoad (KServe form) = %v, %v", lr, err)
	}
	if _, err := c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("load unknown: %v", err)
	}

	// grpc.health.v1 follows readiness; reflection lists the service.
	h, err := healthpb.NewHealthClient(s.grpc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health = %v, %v; want NOT_SERVING with a broken model", h, err)
	}
	stream, err := reflectpb.NewServerReflectionClient(s.grpc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, svc := range rr.GetListServicesResponse().GetService() {
		found = found || svc.Name == "inference.GRPCInferenceService"
	}
	if !found {
		t.Fatalf("reflection does not list inference.GRPCInferenceService: %v", rr)
	}
}

func TestGracefulShutdownDrains(t *testing.T) {
	s := startServer(t, false, server.Config{})
	type result struct {
		code int
		body []byte
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.http+"/v2/models/sum2/infer", strings.NewReader(`{"parameters":{"sleep_ms":300},"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{code: -1, body: []byte(err.Error())}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, b}
	}()
	// Wait until the slow request is in flight: the metrics scrape itself
	// counts as one, so look for two.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, m := do(t, "GET", s.http+"/metrics", nil, nil)
		if strings.Contains(string(m), "ferry_inflight_requests 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slow request never became in-flight")
		}
		time.Sleep(5 * time.Millisecond) // bounded poll, not a wait for state
	}
	if err := s.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-got
	if r.code != 200 {
		t.Fatalf("in-flight request during shutdown: %d %s", r.code, r.body)
	}
	if _, err := http.Get(s.http + "/v2/health/live"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}
