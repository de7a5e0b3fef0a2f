// Package storagetest starts the object stores internal/storage is tested
// against, on loopback, for tests in other packages: versitygw for S3 (the
// binary scripts/test-servers.sh installs).
package storagetest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 keys the server started by StartS3 accepts.
const (
	S3AccessKey = "ferrytestaccess"
	S3SecretKey = "ferry-test-s3cret-Key/+xyz"
)

// FindServer locates a test server binary: $env, then PATH, then the cache
// scripts/test-servers.sh installs into ($FERRY_TEST_SERVERS_CACHE or
// ~/.cache/ferry-test-servers). It skips the test when absent.
func FindServer(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	cache := os.Getenv("FERRY_TEST_SERVERS_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "ferry-test-servers")
		}
	}
	p := filepath.Join(cache, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Skipf("%s not found (set %s, put it on PATH, or run scripts/test-servers.sh)", name, env)
	return ""
}

// StartS3 runs versitygw (posix backend) on a free loopback port until the
// test ends, creates bucket and puts objects (key → body) into it through
// the S3 API. It returns the endpoint, http://127.0.0.1:PORT.
func StartS3(t testing.TB, bucket string, objects map[string][]byte) string {
	t.Helper()
	bin := FindServer(t, "FERRY_TEST_VERSITYGW", "versitygw")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	start(t, port, bin, "--access", S3AccessKey, "--secret", S3SecretKey,
		"--port", fmt.Sprintf("127.0.0.1:%d", port), "--quiet", "posix", t.TempDir())
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, "")})
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	for k, v := range objects {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	return endpoint
}

// start runs bin until the test ends (killed by PID) and waits, at most
// 60 s, until it accepts connections on port.
func start(t testing.TB, port int, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited early: %v\n%s", bin, err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond) // polling a port: nothing to wait on instead
	}
	t.Fatalf("%s did not listen on %s within 60s\n%s", bin, addr, out.String())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
