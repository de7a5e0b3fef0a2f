package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDetectFlagErrors(t *testing.T) {
	ref := filepath.Join(t.TempDir(), "ref.csv")
	if err := os.WriteFile(ref, []byte("a,b\n1,2\n2,1\n3,5\n4,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"detect"}, "--reference is required"},
		{[]string{"detect", "--reference", ref + ".missing.csv"}, "--reference"},
		{[]string{"detect", "--reference", ref, "--drift", "wasserstein"}, `--drift "wasserstein"`},
		{[]string{"detect", "--reference", ref, "--outlier", "lof"}, `--outlier "lof"`},
		{[]string{"detect", "--reference", ref, "--correction", "holm"}, "correction"},
		{[]string{"detect", "--reference", ref, "--drift", "none"}, "configure a drift or an outlier detector"},
		{[]string{"detect", "--reference", ref, "--window-size", "1"}, "window size"},
	} {
		var out, errb bytes.Buffer
		if code := Main(t.Context(), c.args, &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errb.String(), c.want)
		}
	}
}

func TestDetectStartsAndStops(t *testing.T) {
	ref := filepath.Join(t.TempDir(), "ref.json")
	if err := os.WriteFile(ref, []byte(`{"instances": [[1,2],[2,1],[3,5],[4,4],[0,1]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"detect", "--reference", ref, "--http-port", "0", "--outlier", "mahalanobis", "--log-format", "text"}, &out, &errb)
	if code != 0 || !strings.Contains(errb.String(), "reference loaded") || !strings.Contains(errb.String(), "detector listening") {
		t.Errorf("exit %d, stderr %s", code, errb.String())
	}
}
