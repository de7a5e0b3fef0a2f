package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyEnvAndConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(cfg, []byte("http-port: 9000\ngrpc-port: 9001\nlog-level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newFlags := func() (*pflag.FlagSet, *int, *int, *string) {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		h := fs.Int("http-port", 8080, "")
		g := fs.Int("grpc-port", 8081, "")
		l := fs.String("log-level", "info", "")
		fs.String("config", "", "")
		return fs, h, g, l
	}

	// Precedence: command line > environment > file > default.
	fs, h, g, l := newFlags()
	if err := fs.Parse([]string{"--http-port=7000"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_GRPC_PORT", "7001")
	if err := applyEnvAndConfig(fs, cfg); err != nil {
		t.Fatal(err)
	}
	if *h != 7000 || *g != 7001 || *l != "debug" {
		t.Fatalf("got http=%d grpc=%d log=%s; want 7000 (flag), 7001 (env), debug (file)", *h, *g, *l)
	}

	// Bad values name their source.
	fs, _, _, _ = newFlags()
	t.Setenv("FERRY_GRPC_PORT", "abc")
	if err := applyEnvAndConfig(fs, ""); err == nil || !strings.Contains(err.Error(), "FERRY_GRPC_PORT") {
		t.Fatalf("bad env value: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("htp-port: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, _, _, _ = newFlags()
	t.Setenv("FERRY_GRPC_PORT", "1")
	if err := applyEnvAndConfig(fs, bad); err == nil || !strings.Contains(err.Error(), `unknown key "htp-port"`) {
		t.Fatalf("unknown key: err = %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "--model-dir is required"},
		{[]string{"serve", "--model-dir", "/does/not/exist"}, "no such file"},
		{[]string{"serve", "--model-dir", t.TempDir()}, "no models in"},
		{[]string{"serve", "--model-dir", ".", "--model-format", "caffe"}, `--model-format "caffe"`},
		{[]string{"serve", "--model-dir", ".", "--log-level", "loud"}, "--log-level"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := Main(t.Context(), tc.args, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestURIBaseName(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/models/iris/":             "iris",
		"gs://b/iris":                          "iris",
		"https://h/models/iris.tar.gz?sig=abc": "iris",
		"https://h/iris/model.json":            "iris",
		"file:///tmp/models/fraud.zip":         "fraud",
		"pvc://claim/xgb":                      "xgb",
	} {
		if got := uriBaseName(in); got != want {
			t.Errorf("uriBaseName(%q) = %q, want %q", in, got, want)
		}
	}
}
