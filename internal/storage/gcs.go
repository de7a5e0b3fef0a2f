package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// gcsSource reads gs://bucket/key through Google's client library.
type gcsSource struct {
	client *storage.Client
	hc     *http.Client
	loc    location
}

func newGCSSource(ctx context.Context, cfg GCSConfig, loc location, idle time.Duration) (*gcsSource, error) {
	hc, err := httpClient(false, "", idle)
	if err != nil {
		return nil, err
	}
	opts := []option.ClientOption{storage.WithJSONReads()}
	switch {
	case cfg.EmulatorHost != "":
		ep := cfg.EmulatorHost
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(ep, "/")+"/storage/v1/"),
			option.WithoutAuthentication(), option.WithHTTPClient(hc))
	case cfg.CredentialsFile != "":
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	case len(cfg.CredentialsJSON) > 0:
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, cfg.CredentialsJSON))
	default:
		// Application default credentials (GKE workload identity, gcloud
		// login) when there are any; anonymous otherwise, as in KServe.
		if creds, err := google.FindDefaultCredentials(ctx, storage.ScopeReadOnly); err == nil {
			opts = append(opts, option.WithCredentials(creds))
		} else {
			opts = append(opts, option.WithoutAuthentication(), option.WithHTTPClient(hc))
		}
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: gcs client: %w", ErrAccessDenied, err)
	}
	client.SetRetry(storage.WithPolicy(storage.RetryNever)) // Pull retries with its own backoff
	return &gcsSource{client: client, hc: hc, loc: loc}, nil
}

func (s *gcsSource) list(ctx context.Context) ([]object, error) {
	b := s.client.Bucket(s.loc.bucket)
	if !s.loc.dirOnly {
		a, err := b.Object(s.loc.key).Attrs(ctx)
		if err == nil {
			o := gcsObject(lastSegment(s.loc.key), a)
			return []object{o}, nil
		}
		if err = gcsError(err); !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	prefix := s.loc.key
	if prefix != "" {
		prefix += "/"
	}
	var objs []object
	it := b.Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, gcsError(err)
		}
		if strings.HasSuffix(a.Name, "/") {
			continue
		}
		objs = append(objs, gcsObject(relName(s.loc.key, a.Name), a))
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: no object or prefix %q in bucket %q", ErrNotFound, s.loc.key, s.loc.bucket)
	}
	return objs, nil
}

func gcsObject(name string, a *storage.ObjectAttrs) object {
	o := object{name: name, key: a.Name, size: a.Size, version: strconv.FormatInt(a.Generation, 10), ranges: true}
	if len(a.MD5) == 16 {
		o.md5 = a.MD5
	}
	return o
}

func (s *gcsSource) open(ctx context.Context, o object, off, n int64) (io.ReadCloser, error) {
	h := s.client.Bucket(s.loc.bucket).Object(o.key)
	if gen, err := strconv.ParseInt(o.version, 10, 64); err == nil && gen > 0 {
		h = h.Generation(gen) // every range from the listed version
	}
	r, err := h.NewRangeReader(ctx, off, n)
	if err != nil {
		return nil, gcsError(err)
	}
	return r, nil
}

func (s *gcsSource) close() error {
	s.hc.CloseIdleConnections()
	return s.client.Close()
}

func gcsError(err error) error {
	var g *googleapi.Error
	code := 0
	if errors.As(err, &g) {
		code = g.Code
	}
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("%w: bucket does not exist: %w", ErrNotFound, err)
	case errors.Is(err, storage.ErrObjectNotExist) || code == 404:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case code == 401 || code == 403:
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case code >= 400 && code < 500 && code != 408 && code != 429:
		return fmt.Errorf("%w: %w", errFinal, err)
	}
	return err
}
