package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	s3Access = "ferrytestaccess"
	s3Secret = "ferry-test-s3cret-Key/+xyz"
)

// startVersity runs versitygw (posix backend) on loopback and fills bucket
// "models" through the S3 API. It returns the endpoint.
func startVersity(t *testing.T, objects map[string][]byte) string {
	t.Helper()
	bin := findServer(t, "FERRY_TEST_VERSITYGW", "versitygw")
	port := freePort(t)
	root := t.TempDir()
	startServer(t, port, bin, "--access", s3Access, "--secret", s3Secret,
		"--port", fmt.Sprintf("127.0.0.1:%d", port), "--quiet", "posix", root)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s3Access, s3Secret, "")})
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	for k, v := range objects {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String(k),
			Body: bytes.NewReader(v)}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	return endpoint
}

func TestPullS3(t *testing.T) {
	big := bigBody(700_000)
	endpoint := startVersity(t, map[string][]byte{
		"iris/v1/model.bst":      []byte("tree"),
		"iris/v1/meta/info.json": []byte(`{"a":1}`),
		"iris/v10/other.bst":     []byte("not mine"),
		"big/weights.bin":        big,
		"one/model.tar.gz":       makeTar(t, true, entry{name: "m/model.json", body: "{}"}),
	})
	var cfg Config
	env := map[string]string{
		"S3_ENDPOINT": strings.TrimPrefix(endpoint, "http://"), "S3_USE_HTTPS": "0",
		"AWS_ACCESS_KEY_ID": s3Access, "AWS_SECRET_ACCESS_KEY": s3Secret, "AWS_REGION": "us-east-1",
	}
	if err := cfg.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	cfg.PartSize = 64 << 10
	p := newTestPuller(t, cfg)
	ctx := t.Context()

	t.Run("prefix is a directory", func(t *testing.T) {
		for _, uri := range []string{"s3://models/iris/v1", "s3://models/iris/v1/"} {
			dir, err := p.Pull(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			got := readTree(t, dir)
			if len(got) != 2 || got["model.bst"] != "tree" || got["meta/info.json"] != `{"a":1}` {
				t.Errorf("%s: %v", uri, got)
			}
		}
	})
	t.Run("single object, parallel ranges, MD5 checked", func(t *testing.T) {
		dir, err := p.Pull(ctx, "s3://models/big/weights.bin")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "weights.bin")); !bytes.Equal(got, big) {
			t.Error("content differs")
		}
	})
	t.Run("archive object is unpacked", func(t *testing.T) {
		dir, err := p.Pull(ctx, "s3://models/one/model.tar.gz")
		if err != nil {
			t.Fatal(err)
		}
		if got := readTree(t, dir); got["m/model.json"] != "{}" || len(got) != 1 {
			t.Errorf("%v", got)
		}
	})
	for _, tc := range []struct {
		uri, want string
		kind      error
		cfg       func(*Config)
	}{
		{uri: "s3://models/iris/v2", kind: ErrNotFound, want: `no object or prefix "iris/v2"`},
		{uri: "s3://models/iris/v1/model.bst/", kind: ErrNotFound},
		{uri: "s3://nosuchbucket/iris/v1", kind: ErrNotFound, want: "bucket does not exist"},
		{uri: "s3://models/iris/v1", kind: ErrAccessDenied, cfg: func(c *Config) { c.S3.SecretAccessKey = "wrong-s3cret-value" }},
		{uri: "s3://models/iris/v1", kind: ErrAccessDenied, cfg: func(c *Config) { c.S3.AccessKeyID = "nobody" }},
		{uri: "s3://models/iris/v1", kind: ErrAccessDenied, cfg: func(c *Config) { c.S3.Anonymous = true }},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			c := cfg
			c.CacheDir = t.TempDir()
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			_, err := newTestPuller(t, c).Pull(ctx, tc.uri)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want %v", err, tc.kind)
			}
			mustContain(t, err, tc.uri, tc.want)
			for _, s := range []string{s3Secret, "wrong-s3cret-value"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
			assertCache(t, c.CacheDir, 0)
		})
	}
}

// An object that changes between listing and download must not be cached
// under the old version: If-Match makes the store refuse.
func TestPullS3ChangedDuringDownload(t *testing.T) {
	endpoint := startVersity(t, map[string][]byte{"m/model.bin": []byte("v1")})
	cfg := Config{S3: S3Config{Endpoint: endpoint, AccessKeyID: s3Access, SecretAccessKey: s3Secret}}
	p := newTestPuller(t, cfg)
	loc, _ := parseURI("s3://models/m/model.bin", "")
	src, err := newS3Source(cfg.S3, loc, 0)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := src.list(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s3Access, s3Secret, "")})
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.bin"),
		Body: strings.NewReader("v2 longer")}); err != nil {
		t.Fatal(err)
	}
	_, err = src.open(context.Background(), objs[0], 0, objs[0].size)
	if !errors.Is(err, ErrVerify) {
		t.Errorf("open after change: %v, want ErrVerify", err)
	}
	dir, err := p.Pull(t.Context(), "s3://models/m/model.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir)["model.bin"]; got != "v2 longer" {
		t.Errorf("got %q", got)
	}
}
