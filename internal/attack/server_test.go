package attack_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
	"github.com/ferryserve/ferry/internal/server"
)

// startPredictor runs a real ferry server on loopback serving the
// examples' XGBoost iris model as "iris" and the ONNX digits image model
// as "digits"; it returns host:port of its HTTP listener.
func startPredictor(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	cp := func(src, dir, name string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cp("../../examples/models/xgboost-iris/model.json", "iris", "model.json")
	cp("../../examples/attack/models/onnx-digits/model.onnx", "digits", "model.onnx")
	reg := runtime.NewRegistry(xgboost.Format, onnx.Format)
	srcs, err := repository.Discover(root, "", "", reg.HasModelFile)
	if err != nil {
		t.Fatal(err)
	}
	repo := repository.New(repository.Config{Loader: reg})
	for _, s := range srcs {
		repo.Add(s)
	}
	if err := repo.LoadAll(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("predictor: %v", err)
		}
		repo.Close()
	})
	return srv.HTTPAddr()
}
