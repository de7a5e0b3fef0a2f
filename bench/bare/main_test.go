package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/ferryserve/ferry/api/inference"
)

// payload reads one of the committed bench requests.
func payload(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "payloads", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestREST(t *testing.T) {
	repo, err := constantRepository(t.Context(), "bench")
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	srv := httptest.NewServer(newMux(repo))
	defer srv.Close()

	tests := []struct {
		path, body string
		code, rows int
	}{
		{"/v1/models/bench:predict", payload(t, "v1-b1.json"), 200, 1},
		{"/v1/models/bench:predict", payload(t, "v1-b64.json"), 200, 64},
		{"/v2/models/bench/infer", payload(t, "v2-b1.json"), 200, 1},
		{"/v2/models/any/infer", payload(t, "v2-b64.json"), 200, 64},
		{"/v1/models/other:predict", payload(t, "v1-b1.json"), 404, 0},
		{"/v2/models/bench/infer", `{"inputs": []}`, 400, 0},
		{"/v2/models/bench/infer", `{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3]}]}`, 400, 0},
	}
	for _, tc := range tests {
		resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Predictions []float64 `json:"predictions"`
			Outputs     []struct {
				Name string    `json:"name"`
				Data []float64 `json:"data"`
			} `json:"outputs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != tc.code || err != nil {
			t.Errorf("POST %s: status %d (decode err %v), want %d", tc.path, resp.StatusCode, err, tc.code)
			continue
		}
		if tc.code != 200 {
			continue
		}
		preds := got.Predictions
		if len(got.Outputs) == 1 && got.Outputs[0].Name == "predict" {
			preds = got.Outputs[0].Data
		}
		if len(preds) != tc.rows || preds[0] != answer {
			t.Errorf("POST %s: predictions %v, want %d × %v", tc.path, preds, tc.rows, answer)
		}
	}
}

func TestGRPC(t *testing.T) {
	for _, batch := range []int{1, 64} {
		in := &pb.ModelInferRequest{}
		if err := protojson.Unmarshal([]byte(payload(t, fmt.Sprintf("grpc-b%d.json", batch))), in); err != nil {
			t.Fatal(err)
		}
		out, err := inferServer{}.ModelInfer(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		o := out.GetOutputs()
		if len(o) != 1 || o[0].GetName() != "predict" || len(o[0].GetContents().GetFp32Contents()) != batch {
			t.Errorf("batch %d: outputs %v", batch, o)
		}
	}
	_, err := inferServer{}.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "bench"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty request: %v, want InvalidArgument", err)
	}
}
