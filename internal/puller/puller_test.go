package puller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
)

// localFetcher serves "local://NAME" from a directory of model dirs and
// counts pulls.
type localFetcher struct {
	root  string
	pulls atomic.Int64
}

func (f *localFetcher) Pull(_ context.Context, uri string) (string, error) {
	f.pulls.Add(1)
	name, ok := strings.CutPrefix(uri, "local://")
	if !ok {
		return "", fmt.Errorf("unsupported scheme in %q", uri)
	}
	dir := filepath.Join(f.root, name)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("object %s not found", uri)
	}
	return dir, nil
}

func setup(t *testing.T) (*localFetcher, string, string) {
	t.Helper()
	root := t.TempDir()
	for i, n := range []string{"a", "b", "c"} {
		d := filepath.Join(root, n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtimetest.WriteModel(d, i+1); err != nil {
			t.Fatal(err)
		}
	}
	return &localFetcher{root: root}, filepath.Join(t.TempDir(), "models.json"), t.TempDir()
}

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newPuller(t *testing.T, f Fetcher, cfgPath, state string) (*Puller, *repository.Repository) {
	t.Helper()
	repo := repository.New(repository.Config{Loader: runtime.NewRegistry(runtimetest.Format)})
	p, err := New(Config{ConfigPath: cfgPath, Fetcher: f, Repository: repo, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	return p, repo
}

func phases(p *Puller) map[string]string {
	out := map[string]string{}
	for _, s := range p.States() {
		out[s.Name] = s.Phase
	}
	return out
}

func TestSyncAddRemoveAndRestart(t *testing.T) {
	f, cfgPath, state := setup(t)
	p, repo := newPuller(t, f, cfgPath, state)
	ctx := t.Context()

	writeConfig(t, cfgPath, `[{"modelName":"a","modelSpec":{"storageUri":"local://a","framework":"sum","memory":"1Mi"}},
	                         {"modelName":"b","modelSpec":{"storageUri":"local://b","framework":"sum"}}]`)
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := phases(p); got["a"] != "Loaded" || got["b"] != "Loaded" {
		t.Fatalf("phases %v", got)
	}
	if ok, _ := repo.ModelReady("a", ""); !ok {
		t.Fatal("a not ready")
	}

	// An unchanged file does nothing.
	if err := p.Sync(ctx); err != nil || f.pulls.Load() != 2 {
		t.Fatalf("resync pulled again: %d pulls, %v", f.pulls.Load(), err)
	}

	// Remove b, add c.
	writeConfig(t, cfgPath, `[{"modelName":"a","modelSpec":{"storageUri":"local://a","framework":"sum","memory":"1Mi"}},
	                         {"modelName":"c","modelSpec":{"storageUri":"local://c","framework":"sum"}}]`)
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.ModelReady("b", ""); !errors.Is(err, repository.ErrModelNotFound) {
		t.Fatalf("b still known: %v", err)
	}
	if ok, _ := repo.ModelReady("c", ""); !ok {
		t.Fatal("c not ready")
	}
	if f.pulls.Load() != 3 {
		t.Fatalf("%d pulls, want 3 (a and c kept, c new)", f.pulls.Load())
	}

	// A broken file leaves the served models alone.
	writeConfig(t, cfgPath, `{"not": "a list"`)
	if err := p.Sync(ctx); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("bad config: %v", err)
	}
	if ok, _ := repo.ModelReady("a", ""); !ok {
		t.Fatal("a unloaded by a broken config")
	}

	// Restart: a new puller with the same state dir loads without pulling.
	writeConfig(t, cfgPath, `[{"modelName":"a","modelSpec":{"storageUri":"local://a","framework":"sum","memory":"1Mi"}}]`)
	before := f.pulls.Load()
	p2, repo2 := newPuller(t, f, cfgPath, state)
	if err := p2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := repo2.ModelReady("a", ""); !ok || f.pulls.Load() != before {
		t.Fatalf("restart: ready=%v pulls %d -> %d (want no new pull)", ok, before, f.pulls.Load())
	}
}

func TestSyncReportsBadEntriesAndFailures(t *testing.T) {
	f, cfgPath, state := setup(t)
	p, repo := newPuller(t, f, cfgPath, state)
	writeConfig(t, cfgPath, `[
	  {"modelName":"../etc","modelSpec":{"storageUri":"local://a"}},
	  {"modelName":"nofile","modelSpec":{"storageUri":"local://missing","framework":"sum"}},
	  {"modelName":"badmem","modelSpec":{"storageUri":"local://a","memory":"lots"}},
	  {"modelName":"a","modelSpec":{"storageUri":"local://a","framework":"sum"}}]`)
	if err := p.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := map[string]State{}
	for _, s := range p.States() {
		st[s.Name] = s
	}
	if st["#0"].Phase != "Failed" || !strings.Contains(st["#0"].Reason, "must not contain") {
		t.Errorf("bad name: %+v", st["#0"])
	}
	if st["nofile"].Phase != "Failed" || !strings.Contains(st["nofile"].Reason, "not found") {
		t.Errorf("missing object: %+v", st["nofile"])
	}
	if st["badmem"].Phase != "Failed" || !strings.Contains(st["badmem"].Reason, "memory quantity") {
		t.Errorf("bad memory: %+v", st["badmem"])
	}
	if ok, _ := repo.ModelReady("a", ""); !ok {
		t.Error("the good model did not load")
	}
}

func TestParseQuantity(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1500": 1500, "1Ki": 1024, "256Mi": 256 << 20, "1G": 1e9, "1.5Gi": 3 << 29, "1Pi": 1 << 50, "1k": 1e3, "2e3": 2000} {
		if got, err := ParseQuantity(in); err != nil || got != want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "-1Mi", "1Zi", "1K", "8Ei"} {
		if _, err := ParseQuantity(bad); err == nil {
			t.Errorf("ParseQuantity(%q) accepted", bad)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`[{"modelName":"a","modelSpec":{"storageUri":"s3://b/a","framework":"xgboost","memory":"1Gi"}}]`))
	f.Add([]byte(`[{"modelName":"../x","modelSpec":{}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		good, _, err := ParseConfig(b)
		if err != nil {
			return
		}
		for _, m := range good {
			if validName(m.Name) != nil || m.Spec.StorageURI == "" {
				t.Fatalf("accepted invalid entry %+v", m)
			}
		}
	})
}

// TestFailedModelIsRetried: a model whose pull fails is tried again (after
// a short backoff) without any change to the config.
func TestFailedModelIsRetried(t *testing.T) {
	f, cfgPath, state := setup(t)
	p, repo := newPuller(t, f, cfgPath, state)
	writeConfig(t, cfgPath, `[{"modelName":"late","modelSpec":{"storageUri":"local://late","framework":"sum"}}]`)
	if err := p.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if phases(p)["late"] != "Failed" {
		t.Fatalf("phases %v", phases(p))
	}
	// The object appears; the next passes within the backoff do nothing,
	// the one after it retries.
	d := filepath.Join(f.root, "late")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runtimetest.WriteModel(d, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for phases(p)["late"] != "Loaded" {
		if time.Now().After(deadline) {
			t.Fatalf("never retried: %v", phases(p))
		}
		time.Sleep(100 * time.Millisecond) // bounded poll; the backoff is 1 s
		if err := p.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := repo.ModelReady("late", ""); !ok {
		t.Fatal("not ready after the retry")
	}
}
