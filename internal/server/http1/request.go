package http1

import (
	"bytes"
	"net/http"
	"net/url"
)

// knownKeys interns the canonical names of the header fields inference
// clients send, so that building a request's http.Header allocates no key.
var knownKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Authorization",
		"Connection", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding",
		"Expect", "Upgrade", "Cookie", "Origin", "Referer", "Te", "Trailer", "Keep-Alive",
		"X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip",
		"Ce-Id", "Ce-Type", "Ce-Source", "Ce-Specversion", "Ce-Time",
		"Inference-Header-Content-Length", "Traceparent", "Tracestate",
		"Ferry-Replica-Id", "Grpc-Timeout",
	} {
		m[k] = k
	}
	return m
}()

// maxInterned bounds the strings one connection remembers, and the length
// of each, so a client cannot grow a connection's memory without bound.
const (
	maxInterned    = 64
	maxInternedLen = 256
)

// interner turns header values and targets into strings, reusing the
// string of an equal earlier value on the same connection: a client sends
// the same User-Agent, Host, Content-Type and path request after request.
type interner map[string]string

func (in interner) str(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= maxInternedLen && len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// canonicalKey returns name in canonical MIME form (Content-Length), using
// scratch for the conversion so that known names cost no allocation.
func canonicalKey(name, scratch []byte) string {
	if len(name) > len(scratch) {
		return http.CanonicalHeaderKey(string(name))
	}
	b := scratch[:len(name)]
	upper := true
	for i, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := knownKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

// fillHeader writes h's fields into hdr, which is cleared first.
func (c *conn) fillHeader(h *head, hdr http.Header) {
	clear(hdr)
	c.vals = c.vals[:0]
	for _, f := range h.fields {
		k := canonicalKey(f.name, c.keyScratch[:])
		if k == "Host" || k == "Transfer-Encoding" {
			continue // in Request.Host and TransferEncoding, as net/http has them
		}
		v := c.intern.str(f.value)
		if old, ok := hdr[k]; ok {
			hdr[k] = append(old, v)
			continue
		}
		// One-element slices share a per-connection backing array; the
		// capacity of one makes an append by a handler copy it.
		c.vals = append(c.vals, v)
		n := len(c.vals)
		hdr[k] = c.vals[n-1 : n : n]
	}
}

// parseTarget fills u from an origin-form target (/path?query) without
// allocating for a path seen before on this connection; other forms
// (escaped paths, absolute-form, "*") go through url.ParseRequestURI.
func (c *conn) parseTarget(target []byte, u *url.URL) error {
	*u = url.URL{}
	if target[0] == '/' && bytes.IndexByte(target, '%') < 0 && bytes.IndexByte(target, '#') < 0 &&
		!(len(target) > 1 && target[1] == '/') {
		path, query := target, []byte(nil)
		if i := bytes.IndexByte(target, '?'); i >= 0 {
			path, query = target[:i], target[i+1:]
			u.ForceQuery = len(query) == 0
		}
		u.Path = c.intern.str(path)
		if len(query) > 0 {
			u.RawQuery = string(query)
		}
		return nil
	}
	p, err := url.ParseRequestURI(string(target))
	if err != nil {
		return err
	}
	*u = *p
	return nil
}
