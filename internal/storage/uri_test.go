package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		raw                       string
		scheme, bucket, key, norm string
		dirOnly                   bool
		account                   string
	}{
		{raw: "s3://b/models/iris", scheme: "s3", bucket: "b", key: "models/iris", norm: "s3://b/models/iris"},
		{raw: "s3://b/models/iris/", scheme: "s3", bucket: "b", key: "models/iris", norm: "s3://b/models/iris/", dirOnly: true},
		{raw: "s3://b", scheme: "s3", bucket: "b", key: "", norm: "s3://b//", dirOnly: true},
		{raw: "gs://b/k", scheme: "gs", bucket: "b", key: "k", norm: "gs://b/k"},
		{raw: "az://c/p/q", scheme: "azure", bucket: "c", key: "p/q", norm: "az:///c/p/q"},
		{raw: "https://Acct.blob.core.windows.net/c/p?sv=1&sig=x", scheme: "azure", bucket: "c", key: "p",
			norm: "az://acct/c/p", account: "acct"},
		{raw: "HTTPS://Example.COM/m/model.bst#frag", scheme: "http", norm: "https://example.com/m/model.bst"},
		{raw: "file:///srv/models/m", scheme: "file", norm: "file:///srv/models/m"},
		{raw: "/srv/models/m/", scheme: "file", norm: "file:///srv/models/m", dirOnly: true},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			l, err := parseURI(tc.raw, "")
			if err != nil {
				t.Fatal(err)
			}
			if l.scheme != tc.scheme || l.bucket != tc.bucket || l.key != tc.key || l.norm != tc.norm ||
				l.dirOnly != tc.dirOnly || l.account != tc.account {
				t.Errorf("got %+v", l)
			}
			if strings.Contains(l.display, "sig=x") {
				t.Errorf("display leaks the SAS: %s", l.display)
			}
		})
	}
}

func TestParseURIRejects(t *testing.T) {
	for _, raw := range []string{
		"", "ftp://host/m", "hdfs://nn/m", "s3:bucket/key", "s3://", "s3:///key", "gs://", "az://", "az:///x",
		"s3://b/a/../../x", "s3://b/k?versionId=1", "http:///nohost", "pvc://claim/m", "https://acct.blob.core.windows.net/",
	} {
		t.Run(raw, func(t *testing.T) {
			if _, err := parseURI(raw, ""); !errors.Is(err, ErrInvalidURI) {
				t.Errorf("got %v, want ErrInvalidURI", err)
			}
		})
	}
	for _, raw := range []string{"pvc://c/../../etc", "pvc://../x", "pvc:///x", "pvc://c/a/../../../x"} {
		t.Run(raw, func(t *testing.T) {
			if _, err := parseURI(raw, "/mnt/pvc"); !errors.Is(err, ErrInvalidURI) {
				t.Errorf("got %v, want ErrInvalidURI", err)
			}
		})
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://b/k", "gs://b/", "az://c/p", "pvc://c/p/../q", "https://u:p@h/x?y=z",
		"https://a.blob.core.windows.net/c/k?sig=s", "file:///x", "/abs", "rel/p", "x:y", "C:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, err := parseURI(raw, "/mnt/pvc")
		if err != nil {
			if !errors.Is(err, ErrInvalidURI) {
				t.Fatalf("error %v does not wrap ErrInvalidURI", err)
			}
			return
		}
		if hasDotDot(l.key) {
			t.Errorf("%q: key %q climbs", raw, l.key)
		}
		if strings.HasPrefix(raw, "pvc://") && !strings.HasPrefix(l.localPath, "/mnt/pvc/") {
			t.Errorf("%q resolves to %q, outside the pvc root", raw, l.localPath)
		}
	})
}

func TestPullLocalAndPVC(t *testing.T) {
	root := t.TempDir()
	model := filepath.Join(root, "claim", "models", "m1")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "model.bst"), []byte("tree"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newTestPuller(t, Config{PVCRoot: root})
	for _, uri := range []string{model, "file://" + model, "pvc://claim/models/m1", model + "/"} {
		dir, err := p.Pull(t.Context(), uri)
		if err != nil || dir != model {
			t.Errorf("%s: %q, %v; want the directory in place", uri, dir, err)
		}
	}
	// A single local file is copied into a cache entry of its own.
	dir, err := p.Pull(t.Context(), "pvc://claim/models/m1/model.bst")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); len(got) != 1 || got["model.bst"] != "tree" {
		t.Errorf("single file: %v", got)
	}
	assertCache(t, p.cfg.CacheDir, 1)
}

// Bad input: each error names the URI, wraps the right sentinel, and leaves
// the cache empty.
func TestPullBadInput(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "model.bst")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newFileServer(t, map[string][]byte{})
	for _, tc := range []struct {
		uri, want string
		kind      error
	}{
		{"ftp://host/model", `unsupported scheme "ftp"`, ErrInvalidURI},
		{"s3://", "no bucket", ErrInvalidURI},
		{"gs:///models/x", "no bucket", ErrInvalidURI},
		{"pvc://claim/x", "mount root", ErrInvalidURI},
		{filepath.Join(root, "missing"), "no such file", ErrNotFound},
		{file + "/", "names a file", ErrInvalidURI},
		{srv.URL + "/models/", "must name a file", ErrInvalidURI},
		{srv.URL + "/models/nothing.bst", "404", ErrNotFound},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			p := newTestPuller(t, Config{})
			_, err := p.Pull(t.Context(), tc.uri)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want %v", err, tc.kind)
			}
			var e *Error
			if !errors.As(err, &e) || e.URI != tc.uri {
				t.Errorf("error %#v does not carry the URI %q", err, tc.uri)
			}
			mustContain(t, err, tc.uri, tc.want)
			assertCache(t, p.cfg.CacheDir, 0)
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_DEFAULT_REGION": "eu-west-1",
		"S3_ENDPOINT": "minio:9000", "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "false", "S3_USER_VIRTUAL_BUCKET": "True",
		"awsAnonymousCredential": "false", "GOOGLE_APPLICATION_CREDENTIALS": "/sa.json", "STORAGE_EMULATOR_HOST": "h:1",
		"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCESS_KEY": "key", "AZURE_STORAGE_SAS_TOKEN": "sv=1",
	}
	var c Config
	c.S3.Region = "kept"
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	want := S3Config{AccessKeyID: "ak", SecretAccessKey: "sk", Region: "kept", Endpoint: "minio:9000",
		DisableHTTPS: true, SkipVerify: true, VirtualHost: true}
	if c.S3 != want {
		t.Errorf("S3 = %+v, want %+v", c.S3, want)
	}
	if c.GCS.CredentialsFile != "/sa.json" || c.GCS.EmulatorHost != "h:1" {
		t.Errorf("GCS = %+v", c.GCS)
	}
	if c.Azure != (AzureConfig{Account: "acct", AccountKey: "key", SASToken: "sv=1"}) {
		t.Errorf("Azure = %+v", c.Azure)
	}
	env["S3_USE_HTTPS"] = "maybe"
	if err := new(Config).ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil ||
		!strings.Contains(err.Error(), "S3_USE_HTTPS") {
		t.Errorf("bad boolean: %v", err)
	}
}

func TestProgressRateAndETA(t *testing.T) {
	p := Progress{Done: 50, Total: 150, Elapsed: 2e9}
	if p.Rate() != 25 || p.ETA() != 4e9 {
		t.Errorf("rate %v eta %v", p.Rate(), p.ETA())
	}
	if (Progress{Done: 1, Total: -1, Elapsed: 1e9}).ETA() != -1 {
		t.Error("unknown total must give ETA -1")
	}
}

func TestS3Addressing(t *testing.T) {
	loc, _ := parseURI("s3://b/k", "")
	for _, tc := range []struct {
		cfg      S3Config
		pathMode bool
		endpoint string
	}{
		{S3Config{}, true, ""},
		{S3Config{VirtualHost: true, Endpoint: "s3.example.com"}, false, "https://s3.example.com"},
		{S3Config{Endpoint: "minio:9000", DisableHTTPS: true}, true, "http://minio:9000"},
		{S3Config{Endpoint: "https://x:1"}, true, "https://x:1"},
	} {
		s, err := newS3Source(tc.cfg, loc, 0)
		if err != nil {
			t.Fatal(err)
		}
		o := s.client.Options()
		ep := ""
		if o.BaseEndpoint != nil {
			ep = *o.BaseEndpoint
		}
		if o.UsePathStyle != tc.pathMode || ep != tc.endpoint {
			t.Errorf("%+v: path style %v endpoint %q", tc.cfg, o.UsePathStyle, ep)
		}
	}
}
