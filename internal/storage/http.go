package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// httpSource reads one file over HTTP(S), in ranges when the server
// advertises them.
type httpSource struct {
	client  *http.Client
	url     *url.URL
	headers map[string]string
}

func (s *httpSource) request(ctx context.Context, method string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

func (s *httpSource) list(ctx context.Context) ([]object, error) {
	name, err := url.PathUnescape(path.Base(s.url.Path))
	if err != nil || s.url.Path == "" || strings.HasSuffix(s.url.Path, "/") || name == "." || name == "/" {
		return nil, fmt.Errorf("%w: an http uri must name a file, not a directory", ErrInvalidURI)
	}
	o := object{name: name, key: s.url.String(), size: -1}
	req, err := s.request(ctx, http.MethodHead)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return []object{o}, nil // no HEAD: size unknown, one plain GET
	case resp.StatusCode >= 300:
		return nil, statusError(resp)
	}
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Encoding") == "" {
		o.size = resp.ContentLength
		o.ranges = o.size > 0 && strings.EqualFold(resp.Header.Get("Accept-Ranges"), "bytes")
	}
	o.version = resp.Header.Get("ETag")
	if o.version == "" {
		o.version = resp.Header.Get("Last-Modified")
	}
	return []object{o}, nil
}

func (s *httpSource) open(ctx context.Context, o object, off, n int64) (io.ReadCloser, error) {
	req, err := s.request(ctx, http.MethodGet)
	if err != nil {
		return nil, err
	}
	ranged := off > 0 || (n >= 0 && n != o.size)
	if ranged {
		end := ""
		if n >= 0 {
			end = strconv.FormatInt(off+n-1, 10)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%s", off, end))
		if strings.HasPrefix(o.version, `"`) { // a strong ETag: the range must come from the same version
			req.Header.Set("If-Range", o.version)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode >= 300:
		resp.Body.Close()
		return nil, statusError(resp)
	case ranged && resp.StatusCode != http.StatusPartialContent:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: asked for a byte range, got status %d (the file changed?)", ErrVerify, resp.StatusCode)
	}
	return resp.Body, nil
}

func (*httpSource) close() error { return nil }

// statusError maps an HTTP status to a sentinel. 4xx other than 408 and 429
// are final; the rest may be retried.
func statusError(resp *http.Response) error {
	msg := fmt.Sprintf("server said %s", resp.Status)
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w: %s", ErrNotFound, msg)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrAccessDenied, msg)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429 {
		return fmt.Errorf("%w: %s", errFinal, msg)
	}
	return fmt.Errorf("%s", msg)
}
