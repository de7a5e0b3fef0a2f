package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout      = 30 * time.Minute
	DefaultAttempts     = 4
	DefaultRetryBackoff = 250 * time.Millisecond
	DefaultPartSize     = 16 << 20
	DefaultConcurrency  = 4
)

// Config configures a Puller. The zero value works: defaults fill it, the
// cache goes under the user's cache directory, and stores are used without
// credentials. ApplyEnv fills the store settings from KServe's variables.
type Config struct {
	// CacheDir is the cache root shared by every process on the machine.
	// Default: os.UserCacheDir()/ferry/storage.
	CacheDir string
	// MaxCacheBytes bounds the cache; least recently used entries are removed
	// after a pull that takes it over the limit, and a model larger than the
	// whole limit is refused (it could never be kept). 0: no limit.
	MaxCacheBytes int64
	// MaxSize bounds what one pull may write: its download, then, for an
	// archive, what it unpacks to. Sizes the store or the archive declare
	// are checked before anything is written, and the bytes are counted
	// while they stream, so a stream that lies stops at the bound. Default
	// (0): half the free space on the cache's file system when the pull
	// starts; negative: no bound. MaxCacheBytes applies too.
	MaxSize int64
	// ReadIdleTimeout fails a download attempt that receives no byte (or no
	// response headers) for this long; the attempt is retried. Default 60 s;
	// negative: none (only Timeout applies).
	ReadIdleTimeout time.Duration
	// Timeout bounds one whole pull, retries included. Default 30 minutes.
	Timeout time.Duration
	// Attempts is how often one listing or one byte range is tried before the
	// pull fails (1: no retries). Default 4. Backoff starts at RetryBackoff
	// (default 250 ms) and doubles, up to 10 s.
	Attempts     int
	RetryBackoff time.Duration
	// Objects of at least 2×PartSize bytes are fetched as PartSize ranges,
	// Concurrency at a time. Defaults 16 MiB and 4.
	PartSize    int64
	Concurrency int
	// PVCRoot is where pvc://<claim>/<path> resolves to <PVCRoot>/<claim>/<path>.
	PVCRoot string

	HTTP  HTTPConfig
	S3    S3Config
	GCS   GCSConfig
	Azure AzureConfig

	// OnProgress, if set, is called with the bytes done so far while a pull
	// downloads: at most every 100 ms and once at the end, never
	// concurrently for one Puller. It must not block.
	OnProgress func(Progress)
	// Logger receives one line per download; nil logs nothing.
	Logger *slog.Logger
}

// HTTPConfig configures http:// and https:// pulls.
type HTTPConfig struct {
	// Headers are added to every request (e.g. Authorization). Their values
	// are treated as secrets and never appear in errors or logs.
	Headers map[string]string
	// Client is used for every request; default: a client whose requests
	// fail when no response headers arrive within ReadIdleTimeout (a given
	// client keeps its own settings; the body's idle timeout applies to both).
	Client *http.Client
}

// S3Config configures s3:// pulls. Without keys requests are unsigned.
type S3Config struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Region          string // default us-east-1
	// Endpoint for S3-compatible stores: "host:port" or a URL. A bare host
	// gets https:// unless DisableHTTPS.
	Endpoint     string
	DisableHTTPS bool
	SkipVerify   bool   // do not verify the endpoint's TLS certificate
	CABundle     string // PEM file of extra roots
	// VirtualHost selects virtual-hosted-style addressing (bucket.host);
	// the default is path style, as in KServe.
	VirtualHost bool
	Anonymous   bool // ignore the keys and send unsigned requests
}

// GCSConfig configures gs:// pulls. Without explicit credentials Pull uses
// application default credentials if the machine has any, else anonymous requests.
type GCSConfig struct {
	CredentialsFile string // service-account JSON file
	CredentialsJSON []byte // or its contents
	// EmulatorHost ("host:port" or a URL) points at an emulator such as
	// fake-gcs-server; requests to it are unauthenticated.
	EmulatorHost string
}

// AzureConfig configures Azure Blob pulls. With neither key nor SAS requests
// are anonymous.
type AzureConfig struct {
	Account    string // for az://<container>/<path>
	AccountKey string // shared key
	SASToken   string // used when the URI carries none
	// Endpoint replaces https://<account>.blob.core.windows.net, e.g.
	// http://127.0.0.1:10000/devstoreaccount1 for Azurite.
	Endpoint   string
	SkipVerify bool
}

// ApplyEnv fills unset fields from the environment variables KServe's storage
// initializer reads: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION, S3_ENDPOINT /
// AWS_ENDPOINT_URL, S3_USE_HTTPS, S3_VERIFY_SSL, S3_USER_VIRTUAL_BUCKET,
// awsAnonymousCredential, AWS_CA_BUNDLE; GOOGLE_APPLICATION_CREDENTIALS,
// STORAGE_EMULATOR_HOST; AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCESS_KEY
// (or AZURE_STORAGE_KEY), AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_BLOB_ENDPOINT.
// Pass os.LookupEnv; tests pass a map.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	get := func(names ...string) string {
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				return v
			}
		}
		return ""
	}
	set := func(dst *string, names ...string) {
		if *dst == "" {
			*dst = get(names...)
		}
	}
	var errs []error
	flag := func(dst *bool, invert bool, name string) {
		v := get(name)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a boolean", name, v))
			return
		}
		*dst = *dst || b != invert
	}
	s := &c.S3
	set(&s.AccessKeyID, "AWS_ACCESS_KEY_ID")
	set(&s.SecretAccessKey, "AWS_SECRET_ACCESS_KEY")
	set(&s.SessionToken, "AWS_SESSION_TOKEN")
	set(&s.Region, "AWS_REGION", "AWS_DEFAULT_REGION")
	set(&s.Endpoint, "S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	set(&s.CABundle, "AWS_CA_BUNDLE")
	flag(&s.DisableHTTPS, true, "S3_USE_HTTPS")
	flag(&s.SkipVerify, true, "S3_VERIFY_SSL")
	flag(&s.VirtualHost, false, "S3_USER_VIRTUAL_BUCKET")
	flag(&s.Anonymous, false, "awsAnonymousCredential")
	set(&c.GCS.CredentialsFile, "GOOGLE_APPLICATION_CREDENTIALS")
	set(&c.GCS.EmulatorHost, "STORAGE_EMULATOR_HOST")
	a := &c.Azure
	set(&a.Account, "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT")
	set(&a.AccountKey, "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_KEY")
	set(&a.SASToken, "AZURE_STORAGE_SAS_TOKEN")
	set(&a.Endpoint, "AZURE_STORAGE_BLOB_ENDPOINT")
	return errors.Join(errs...)
}

// withDefaults returns c with zero values replaced, or an error for values
// that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return c, fmt.Errorf("storage: no cache directory: set Config.CacheDir: %w", err)
		}
		c.CacheDir = filepath.Join(dir, "ferry", "storage")
	}
	abs, err := filepath.Abs(c.CacheDir)
	if err != nil {
		return c, fmt.Errorf("storage: cache directory: %w", err)
	}
	c.CacheDir = abs
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ReadIdleTimeout == 0 {
		c.ReadIdleTimeout = DefaultReadIdleTimeout
	}
	switch {
	case c.Timeout < 0, c.Attempts < 0, c.RetryBackoff < 0, c.PartSize < 0, c.Concurrency < 0,
		c.MaxCacheBytes < 0:
		return c, errors.New("storage: negative Timeout, Attempts, RetryBackoff, PartSize, Concurrency or cache limit")
	case c.PartSize < 64<<10:
		return c, errors.New("storage: PartSize below 64 KiB")
	}
	if c.PVCRoot != "" {
		if c.PVCRoot, err = filepath.Abs(c.PVCRoot); err != nil {
			return c, fmt.Errorf("storage: pvc root: %w", err)
		}
	}
	return c, nil
}

// Progress reports a download in flight.
type Progress struct {
	URI     string // credentials removed
	Done    int64  // bytes received so far
	Total   int64  // bytes expected; -1 when the store did not say
	Elapsed time.Duration
}

// Rate is the mean download rate so far, in bytes per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

// ETA estimates the time left; -1 when it cannot be estimated.
func (p Progress) ETA() time.Duration {
	r := p.Rate()
	if p.Total < 0 || r <= 0 {
		return -1
	}
	return time.Duration(float64(p.Total-p.Done) / r * float64(time.Second))
}
