package mgmt_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/controlplane"
	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/router"
)

// TestRoundTripWithServer drives the real management API (behind its
// guard, no replicas running) through the client: the two halves of the
// contract agree.
func TestRoundTripWithServer(t *testing.T) {
	store, err := controlplane.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctl := controlplane.NewController(controlplane.Config{Store: store, DataDir: t.TempDir(), Router: router.New("example.com", nil)})
	const tok = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(apiauth.Guard{Token: tok, LoopbackOnly: true}.Wrap(controlplane.NewAPIServer(ctl).Handler()))
	defer srv.Close()
	c := mgmt.NewClient(srv.URL, tok, srv.Client())
	ctx := t.Context()

	doc := "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: iris\nspec:\n  predictor:\n    sklearn:\n      storageUri: file:///models/iris\n" +
		"---\napiVersion: serving.kserve.io/v1alpha1\nkind: TrainedModel\nmetadata:\n  name: tm-iris\nspec:\n  inferenceService: iris\n  model:\n    storageUri: file:///models/tm\n    framework: sklearn\n    memory: 1Mi\n"
	res, err := c.Apply(ctx, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0] != (mgmt.ApplyResult{Kind: "InferenceService", Namespace: "default", Name: "iris", Action: "created"}) || res[1].Kind != "TrainedModel" {
		t.Fatalf("apply: %+v", res)
	}
	if res, err = c.Apply(ctx, []byte(doc)); err != nil || res[0].Action != "unchanged" {
		t.Fatalf("apply again: %+v %v", res, err)
	}
	if items, err := c.List(ctx, mgmt.InferenceServices, "default"); err != nil || len(items) != 1 {
		t.Fatalf("list: %d items, %v", len(items), err)
	}
	if items, err := c.List(ctx, mgmt.InferenceServices, "elsewhere"); err != nil || len(items) != 0 {
		t.Fatalf("list another namespace: %d items, %v", len(items), err)
	}
	s, err := c.InferenceService(ctx, "default", "iris")
	if err != nil || s.Metadata.Name != "iris" || s.Metadata.Generation != 1 {
		t.Fatalf("get: %+v %v", s, err)
	}
	tm, err := c.TrainedModel(ctx, "default", "tm-iris")
	if err != nil || tm.Spec.InferenceService != "iris" {
		t.Fatalf("get tm: %+v %v", tm, err)
	}
	evs, err := c.Events(ctx, "default", "iris")
	if err != nil || len(evs) == 0 || evs[0].Reason != "Applied" || evs[0].Time.IsZero() {
		t.Fatalf("events: %+v %v", evs, err)
	}
	if revs, err := c.Revisions(ctx, "default", "iris"); err != nil || revs == nil {
		t.Fatalf("revisions: %+v %v (want an empty list before a reconcile)", revs, err)
	}
	if reps, err := c.Replicas(ctx, "default", "iris"); err != nil || len(reps.Revisions) != 0 {
		t.Fatalf("replicas: %+v %v", reps, err)
	}
	if logs, err := c.Logs(ctx, "default", "iris", mgmt.LogOptions{Tail: 3}); err != nil || len(logs) != 0 {
		t.Fatalf("logs: %+v %v", logs, err)
	}
	if _, err := c.Apply(ctx, []byte("kind: InferenceService\nmetadata: {name: bad}\nspec: {}\n")); err == nil || mgmt.IsNotFound(err) {
		t.Fatalf("bad apply: %v", err)
	}
	// The service goes first: a delete reconciles, and with no service
	// left that starts no replica.
	if err := c.Delete(ctx, mgmt.InferenceServices, "default", "iris"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, mgmt.TrainedModels, "default", "tm-iris"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, mgmt.TrainedModels, "default", "tm-iris"); !mgmt.IsNotFound(err) {
		t.Fatalf("second delete: %v; want not found", err)
	}
	if _, err := c.InferenceService(ctx, "default", "nope"); !mgmt.IsNotFound(err) {
		t.Fatalf("get missing: %v; want not found", err)
	}
	if _, err := mgmt.NewClient(srv.URL, "wrong", srv.Client()).List(ctx, mgmt.InferenceServices, ""); err == nil || !strings.HasPrefix(err.Error(), "unauthorized: ") {
		t.Fatalf("wrong token: %v", err)
	}
}
