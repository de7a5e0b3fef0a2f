package repository_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
	"github.com/ferryserve/ferry/internal/tensor"
)

func setup(t *testing.T) (string, *runtime.Registry) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []struct {
		path string
		n    int
	}{{"a/1", 1}, {"a/2", 2}, {"a/10", 3}, {"b", 4}} {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtimetest.WriteModel(p, d.n); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "notamodel"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, runtime.NewRegistry(runtimetest.Format)
}

func TestDiscoverAndVersions(t *testing.T) {
	root, reg := setup(t)
	srcs, err := repository.Discover(root, "", "", reg.HasModelFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].Name != "a" || srcs[1].Name != "b" {
		t.Fatalf("Discover = %+v, want models a and b", srcs)
	}
	one, err := repository.Discover(filepath.Join(root, "b"), "custom", "", reg.HasModelFile)
	if err != nil || len(one) != 1 || one[0].Name != "custom" {
		t.Fatalf("single model dir: %+v, %v", one, err)
	}
	repo := repository.New(repository.Config{Loader: reg})
	for _, s := range srcs {
		repo.Add(s)
	}
	if repo.Ready() {
		t.Fatal("ready before loading")
	}
	if err := repo.LoadAll(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if !repo.Ready() {
		t.Fatal("not ready after loading")
	}
	vs, _ := repo.Versions("a")
	if len(vs) != 3 || vs[0] != "1" || vs[2] != "10" {
		t.Fatalf("versions %v, want [1 2 10] in numeric order", vs)
	}
	h, err := repo.Acquire("a", "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != "10" || runtime.Unwrap(h.Model).(*runtimetest.Model).Features != 3 {
		t.Fatalf("default version %q, want the highest (10)", h.Version)
	}
	h.Release()
	if _, err := repo.Acquire("a", "5"); !errors.Is(err, repository.ErrVersionNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := repo.Acquire("zz", ""); !errors.Is(err, repository.ErrModelNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestFailedModelReportsCause(t *testing.T) {
	root, reg := setup(t)
	if err := os.WriteFile(filepath.Join(root, "b", "model.sum"), []byte("nonsense"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs, _ := repository.Discover(root, "", "", reg.HasModelFile)
	repo := repository.New(repository.Config{Loader: reg})
	for _, s := range srcs {
		repo.Add(s)
	}
	err := repo.LoadAll(t.Context(), 1)
	if err == nil || !errors.Is(err, runtime.ErrCorruptModel) {
		t.Fatalf("LoadAll err = %v, want the corrupt model's cause", err)
	}
	if repo.Ready() {
		t.Fatal("server ready with a failed model")
	}
	if _, err := repo.Acquire("a", ""); err != nil {
		t.Fatalf("the good model does not serve: %v", err)
	}
	_, err = repo.Acquire("b", "")
	if !errors.Is(err, repository.ErrModelNotReady) {
		t.Fatalf("failed model: %v", err)
	}
	var found bool
	for _, s := range repo.Index() {
		if s.Name == "b" && s.State == repository.Failed && s.Reason != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("index lacks the failure: %+v", repo.Index())
	}
}

// TestConcurrentUnloadWaitsForRequests runs requests while the model is
// unloaded and reloaded; under -race this checks no request sees a closed
// model and nothing races.
func TestConcurrentUnloadWaitsForRequests(t *testing.T) {
	root, reg := setup(t)
	repo := repository.New(repository.Config{Loader: reg})
	repo.Add(repository.Source{Name: "b", Dir: filepath.Join(root, "b")})
	if err := repo.Load(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var served, refused int64
	var mu sync.Mutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				h, err := repo.Acquire("b", "")
				if err != nil {
					if !errors.Is(err, repository.ErrModelNotReady) {
						t.Errorf("unexpected error %v", err)
					}
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				in := &tensor.Tensor{Name: "x", Datatype: tensor.FP64, Shape: []int64{1, 4}, Data: []float64{1, 2, 3, 4}}
				res, err := h.Model.Predict(ctx, &runtime.Request{Inputs: []*tensor.Tensor{in}})
				h.Release()
				if err == nil && res.Outputs[0].Data.([]float64)[0] != 10 {
					t.Errorf("wrong answer %v", res.Outputs[0].Data)
				}
				mu.Lock()
				served++
				mu.Unlock()
			}
		}()
	}
	// At least 50 unload/load cycles, and until requests got through some
	// of them (bounded by a deadline).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		mu.Lock()
		n := served
		mu.Unlock()
		if (i >= 50 && n > 0) || time.Now().After(deadline) {
			break
		}
		if err := repo.Unload(t.Context(), "b"); err != nil {
			t.Fatal(err)
		}
		if err := repo.Load(t.Context(), "b"); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	if served == 0 {
		t.Fatal("no request was served")
	}
}

func TestMemoryLimitAndLRUEviction(t *testing.T) {
	const mb = 1 << 20
	root := t.TempDir()
	for _, n := range []string{"m1", "m2", "m3"} {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtimetest.WriteBallastModel(p, 1, 8*mb); err != nil {
			t.Fatal(err)
		}
	}
	reg := runtime.NewRegistry(runtimetest.Format)
	newRepo := func(evict bool) *repository.Repository {
		r := repository.New(repository.Config{Loader: reg, MemoryLimit: 20 * mb, EvictLRU: evict})
		for _, n := range []string{"m1", "m2", "m3"} {
			r.Add(repository.Source{Name: n, Dir: filepath.Join(root, n)})
		}
		return r
	}

	// Without eviction the third 8 MiB model is refused with a clear error.
	repo := newRepo(false)
	for _, n := range []string{"m1", "m2"} {
		if err := repo.Load(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range repo.Index() {
		if s.State != repository.Ready {
			continue
		}
		if s.Bytes < 15*mb/2 || s.Bytes > 9*mb {
			t.Fatalf("measured %s at %d bytes, want about 8 MiB", s.Name, s.Bytes)
		}
	}
	err := repo.Load(t.Context(), "m3")
	if !errors.Is(err, repository.ErrMemoryLimit) || !strings.Contains(err.Error(), "--evict lru") {
		t.Fatalf("third load: %v", err)
	}
	if ok, _ := repo.ModelReady("m1", ""); !ok {
		t.Fatal("a refused load disturbed m1")
	}

	// With LRU eviction the least recently used idle model goes.
	repo = newRepo(true)
	for _, n := range []string{"m1", "m2"} {
		if err := repo.Load(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	h, err := repo.Acquire("m1", "") // m1 is now more recent than m2
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if err := repo.Load(t.Context(), "m3"); err != nil {
		t.Fatalf("load with eviction: %v", err)
	}
	if ok, _ := repo.ModelReady("m2", ""); ok {
		t.Fatal("m2 (least recently used) was not evicted")
	}
	if ok, _ := repo.ModelReady("m1", ""); !ok {
		t.Fatal("m1 (recently used) was evicted")
	}

	// A model in use is never evicted: hold m1 and m3, then load m2 again.
	h1, _ := repo.Acquire("m1", "")
	h3, _ := repo.Acquire("m3", "")
	err = repo.Load(t.Context(), "m2")
	h1.Release()
	h3.Release()
	if !errors.Is(err, repository.ErrMemoryLimit) {
		t.Fatalf("load while all others busy: %v", err)
	}
}
