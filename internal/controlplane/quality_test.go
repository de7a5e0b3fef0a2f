package controlplane

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/supervisor"
)

func TestWithQualityAddsTheJournalToServeReplicas(t *testing.T) {
	c := &Controller{cfg: Config{DataDir: "/data", FerryBinary: "/bin/ferry"}}
	serve := func(hp, gp int) supervisor.Config {
		return supervisor.Config{Command: "/bin/ferry", Args: []string{"serve", "--http-port", "1"}}
	}
	container := func(hp, gp int) supervisor.Config {
		return supervisor.Config{Command: "python", Args: []string{"-m", "model"}}
	}
	isvc := &api.InferenceService{Metadata: api.ObjectMeta{Name: "iris", Namespace: "ns", Annotations: map[string]string{AnnotationQuality: "true"}}}

	rev := Revision{Name: "iris-predictor-00002", Created: time.Unix(1700000000, 0)}
	got := c.withQuality(isvc, rev, serve)(1, 2).Args
	want := []string{"serve", "--http-port", "1", "--quality-dir", "/data/quality/ns/iris/iris-predictor-00002-1700000000", "--quality-replica-slots", "--quality-revision", "iris-predictor-00002"}
	if !slices.Equal(got, want) {
		t.Errorf("args %q, want %q", got, want)
	}
	if got := c.withQuality(isvc, rev, container)(1, 2).Args; strings.Contains(strings.Join(got, " "), "quality") {
		t.Errorf("a container replica got %q", got)
	}
	isvc.Metadata.Annotations[AnnotationQuality] = "false"
	if got := c.withQuality(isvc, rev, serve)(1, 2).Args; len(got) != 3 {
		t.Errorf("quality off, args %q", got)
	}
}
