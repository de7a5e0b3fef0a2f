package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/storage/storagetest"
)

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// runFerry runs ferry's command line with env set for the call.
func runFerry(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	code := Main(context.Background(), args, &out, &out)
	return code, out.String()
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPullHTTPArchiveIntoDir(t *testing.T) {
	archive := tarGz(t, map[string]string{"model.joblib": "weights", "meta/info.json": "{}"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/iris.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "mnt", "models")
	want := map[string]string{"model.joblib": "weights", "meta/info.json": "{}"}
	for i := range 2 { // a rerun (the init container after a pod restart) replaces the files
		code, out := runFerry(t, nil, "pull", srv.URL+"/iris.tar.gz", dir)
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, out)
		}
		if got := readDir(t, dir); len(got) != len(want) || got["model.joblib"] != "weights" || got["meta/info.json"] != "{}" {
			t.Fatalf("run %d: %s holds %v, want %v (staging left behind?)", i, dir, got, want)
		}
	}

	code, out := runFerry(t, nil, "pull", srv.URL+"/missing.joblib", t.TempDir())
	if code == 0 || !strings.Contains(out, "missing.joblib") || !strings.Contains(out, "404") {
		t.Errorf("missing object: exit %d, output %q; want a non-zero exit naming the object and the 404", code, out)
	}
	if code, out := runFerry(t, nil, "pull", srv.URL+"/iris.tar.gz"); code == 0 {
		t.Errorf("pull without DIR: exit 0 (%s)", out)
	}
}

func TestPullS3WithKServeEnv(t *testing.T) {
	endpoint := storagetest.StartS3(t, "models", map[string][]byte{
		"iris/model.joblib": []byte("weights"),
		"iris/extra/a.txt":  []byte("a"),
		"other/x":           []byte("not mine"),
	})
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": storagetest.S3AccessKey, "AWS_SECRET_ACCESS_KEY": storagetest.S3SecretKey,
		"S3_ENDPOINT": strings.TrimPrefix(endpoint, "http://"), "S3_USE_HTTPS": "0", "AWS_REGION": "us-east-1",
	}
	dir := t.TempDir()
	code, out := runFerry(t, env, "pull", "s3://models/iris", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if got := readDir(t, dir); len(got) != 2 || got["model.joblib"] != "weights" || got["extra/a.txt"] != "a" {
		t.Errorf("%s holds %v", dir, got)
	}

	// A wrong key fails clearly, without printing the secret.
	env["AWS_SECRET_ACCESS_KEY"] = "wrong-s3cret-value"
	code, out = runFerry(t, env, "pull", "s3://models/iris", t.TempDir())
	if code == 0 || strings.Contains(out, "wrong-s3cret-value") || !strings.Contains(out, "s3://models/iris") {
		t.Errorf("wrong key: exit %d, output %q; want a non-zero exit naming the URI and not the key", code, out)
	}
}
