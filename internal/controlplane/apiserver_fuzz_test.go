package controlplane

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferryserve/ferry/internal/apiauth"
)

// FuzzAPIApply sends arbitrary bodies through the management API's guard
// and apply handler: every answer is a clean status with a JSON body,
// never a panic, and nothing is stored from a refused request.
func FuzzAPIApply(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: a\nspec:\n  predictor:\n    sklearn:\n      storageUri: file:///m\n",
		"apiVersion: serving.kubeflow.org/v1alpha2\nkind: InferenceService\nmetadata:\n  name: b\nspec:\n  default:\n    predictor:\n      sklearn:\n        storageUri: gs://x/y\n",
		"---\n---\n", "{}", "[", "kind: TrainedModel\n", "\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	store, err := OpenStore(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	ctl := NewController(Config{Store: store, DataDir: f.TempDir()})
	h := apiauth.Guard{Token: "0123456789abcdef0123456789abcdef", LoopbackOnly: true, MaxBody: 64 << 10}.Wrap(NewAPIServer(ctl).Handler())
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/v1/apply", bytes.NewReader(body))
		req.Host = "127.0.0.1:8090"
		req.Header.Set("Authorization", "Bearer 0123456789abcdef0123456789abcdef")
		req.Header.Set("Content-Type", "application/yaml")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
		}
	})
}
