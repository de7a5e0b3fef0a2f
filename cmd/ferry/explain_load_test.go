package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTreeShapRefusedAtLoad: ferry serve --explainer-type TreeShap over a
// model without trees exits once the model is loaded, naming the flag, the
// model and why (under ferry up the explainer's condition shows it).
func TestTreeShapRefusedAtLoad(t *testing.T) {
	bin := buildFerry(t)
	dir := t.TempDir()
	b, err := os.ReadFile("../../internal/runtime/sklearn/testdata/models/linreg.joblib")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.joblib"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
		"--model-dir", dir, "--model-name", "lin", "--explainer-type", "TreeShap")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ferry serve did not exit within 60s:\n%s", out)
	}
	if err == nil {
		t.Fatalf("ferry serve exited 0:\n%s", out)
	}
	for _, want := range []string{`--explainer-type TreeShap: model \"lin\"`, "LinearRegression"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
