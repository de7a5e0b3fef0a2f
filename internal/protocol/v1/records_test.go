package v1

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
)

// irisPMML stands in for a PMML model with several Output fields.
type irisPMML struct{ got []map[string]any }

func (m *irisPMML) ActiveFields() []string { return []string{"sepal_length", "petal_length"} }

func (m *irisPMML) PredictRecords(_ context.Context, recs []map[string]any) ([]map[string]any, error) {
	m.got = recs
	out := make([]map[string]any, len(recs))
	for i := range recs {
		out[i] = map[string]any{"Species": "setosa", "Probability_setosa": 1.0}
	}
	return out, nil
}

// TestListRowsReturnEveryOutputField checks that numeric list instances for
// a record model come back as records holding every Output field, as
// KServe's pmmlserver answers, with null kept as a missing value.
func TestListRowsReturnEveryOutputField(t *testing.T) {
	in, err := decodeInstances([]byte(`{"instances": [[5.1, 1.4], [6.2, null]]}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.tensor == nil {
		t.Fatal("numeric rows did not decode to a tensor")
	}
	if in.records, err = tensorRows(in.tensor); err != nil {
		t.Fatal(err)
	}
	m := &irisPMML{}
	body, err := predictRecords(context.Background(), m, in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"predictions":[{"Probability_setosa":1,"Species":"setosa"},{"Probability_setosa":1,"Species":"setosa"}]}`
	if string(body) != want {
		t.Errorf("body = %s\nwant %s", body, want)
	}
	if len(m.got) != 2 || m.got[0]["sepal_length"] != 5.1 || m.got[1]["petal_length"] != nil {
		t.Errorf("records = %v", m.got)
	}
	if _, ok := m.got[1]["petal_length"]; !ok {
		t.Errorf("missing value dropped from the record: %v", m.got[1])
	}
}

// faultyPMML is a record model whose PredictRecords panics, as a model with
// a bug would.
type faultyPMML struct{ irisPMML }

func (*faultyPMML) Metadata() runtime.Metadata { return runtime.Metadata{Platform: "pmml"} }
func (*faultyPMML) Predict(context.Context, *runtime.Request) (*runtime.Response, error) {
	return nil, runtime.ErrUnsupported
}
func (*faultyPMML) Close() error { return nil }
func (*faultyPMML) PredictRecords(context.Context, []map[string]any) ([]map[string]any, error) {
	panic("record fault")
}

// TestRecordPathContainsPanics: the record path calls the unwrapped model,
// past Registry.Load's containment; a panic there still fails only the
// request, with 500 and the stack in the log.
func TestRecordPathContainsPanics(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.rec"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := runtime.NewRegistry(runtime.Format{Name: "rec",
		Match: func(name string, _ []byte) bool { return strings.HasSuffix(name, ".rec") },
		Load:  func(context.Context, string) (runtime.Model, error) { return &faultyPMML{}, nil }})
	repo := repository.New(repository.Config{Loader: reg})
	repo.Add(repository.Source{Name: "iris", Dir: dir})
	if err := repo.LoadAll(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	var log bytes.Buffer
	mux := http.NewServeMux()
	New(Config{Repository: repo, Logger: slog.New(slog.NewTextHandler(&log, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for range 2 {
		resp, err := http.Post(srv.URL+"/v1/models/iris:predict", "application/json", strings.NewReader(`{"instances": [[5.1, 1.4]]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "record fault") {
			t.Fatalf("%d %s, want 500 naming the panic", resp.StatusCode, body)
		}
	}
	if !strings.Contains(log.String(), "model code panicked") || !strings.Contains(log.String(), "records_test.go") {
		t.Errorf("the log lacks the panic and its stack:\n%s", log.String())
	}
}
