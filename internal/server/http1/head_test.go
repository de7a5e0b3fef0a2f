package http1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	for _, c := range []struct {
		name, in string
		err      error // nil: parses
		check    func(*testing.T, *head)
	}{
		{name: "minimal", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", check: func(t *testing.T, h *head) {
			if string(h.method) != "GET" || string(h.target) != "/" || h.proto != 11 || string(h.host) != "a" || h.contentLength != -1 {
				t.Errorf("head %+v", h)
			}
		}},
		{name: "bare LF", in: "POST /x HTTP/1.1\nHost: a\nContent-Length: 3\n\n", check: func(t *testing.T, h *head) {
			if h.contentLength != 3 {
				t.Errorf("content length %d", h.contentLength)
			}
		}},
		{name: "chunked any case", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", check: func(t *testing.T, h *head) {
			if !h.chunked {
				t.Error("not chunked")
			}
		}},
		{name: "same Content-Length twice", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n"},
		{name: "connection options", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", check: func(t *testing.T, h *head) {
			if !h.connClose || h.connUpgrade {
				t.Errorf("close %v upgrade %v", h.connClose, h.connUpgrade)
			}
		}},
		{name: "upgrade", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n", check: func(t *testing.T, h *head) {
			if !h.connUpgrade {
				t.Error("upgrade not seen")
			}
		}},
		{name: "HTTP/1.0 without Host", in: "GET / HTTP/1.0\r\n\r\n", check: func(t *testing.T, h *head) {
			if h.proto != 10 {
				t.Errorf("proto %d", h.proto)
			}
		}},
		{name: "h2 preface", in: "PRI * HTTP/2.0\r\n\r\n", check: func(t *testing.T, h *head) {
			if h.proto != 0 {
				t.Errorf("proto %d", h.proto)
			}
		}},
		{name: "expect continue", in: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", check: func(t *testing.T, h *head) {
			if !h.expectContinue {
				t.Error("expect not seen")
			}
		}},
		{name: "IPv6 host and port", in: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},
		{name: "obs-text value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n"},

		{name: "TE and CL", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", err: errTEAndLength},
		{name: "CL and TE", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", err: errTEAndLength},
		{name: "two lengths", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", err: errBadLength},
		{name: "length list", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\n", err: errBadLength},
		{name: "signed length", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\n", err: errBadLength},
		{name: "hex length", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x2\r\n\r\n", err: errBadLength},
		{name: "huge length", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", err: errBadLength},
		{name: "TE gzip", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: errUnsupportedTE},
		{name: "TE twice", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: errUnsupportedTE},
		{name: "TE xchunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", err: errUnsupportedTE},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", err: errMalformed},
		{name: "space before colon", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 2\r\n\r\n", err: errMalformed},
		{name: "no colon", in: "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", err: errMalformed},
		{name: "empty name", in: "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", err: errMalformed},
		{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", err: errMalformed},
		{name: "CR in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", err: errMalformed},
		{name: "DEL in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", err: errMalformed},
		{name: "no Host", in: "GET / HTTP/1.1\r\n\r\n", err: errBadHost},
		{name: "two Hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", err: errBadHost},
		{name: "bad Host", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err: errBadHost},
		{name: "Host with slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", err: errBadHost},
		{name: "bad method", in: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", err: errMalformed},
		{name: "two spaces", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", err: errMalformed},
		{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", err: errMalformed},
		{name: "no proto", in: "GET /\r\nHost: a\r\n\r\n", err: errMalformed},
		{name: "not HTTP", in: "GET / FTP/1.1\r\nHost: a\r\n\r\n", err: errMalformed},
		{name: "other expectation", in: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", err: errBadExpectation},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h head
			n, err := parseHead([]byte(c.in), &h)
			if !errors.Is(err, c.err) {
				t.Fatalf("parseHead: %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if n != len(c.in) {
				t.Fatalf("head length %d, want %d", n, len(c.in))
			}
			if end := headEnd([]byte(c.in), 0); end != n {
				t.Errorf("headEnd %d, parseHead %d", end, n)
			}
			for i := range len(c.in) {
				if m, err := parseHead([]byte(c.in[:i]), &h); m != 0 || err != nil && !errors.Is(err, c.err) {
					t.Fatalf("prefix of %d bytes: %d, %v", i, m, err)
				}
				if end := headEnd([]byte(c.in[:i]), 0); end != 0 {
					t.Fatalf("prefix of %d bytes: headEnd %d", i, end)
				}
			}
			if c.check != nil {
				_, _ = parseHead([]byte(c.in), &h)
				c.check(t, &h)
			}
		})
	}
}

// TestHeadEndIncremental checks that scanning a head in pieces finds the
// same end as scanning it whole.
func TestHeadEndIncremental(t *testing.T) {
	in := []byte("POST /v1/models/m:predict HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
	want := len(in) - 2
	for step := 1; step < len(in); step++ {
		scanned, got := 0, 0
		for l := step; l <= len(in); l += step {
			if got = headEnd(in[:l], scanned); got > 0 {
				break
			}
			scanned = l
		}
		if got == 0 {
			got = headEnd(in, scanned)
		}
		if got != want {
			t.Errorf("step %d: end %d, want %d", step, got, want)
		}
	}
}

// FuzzParseHead checks that the head parser never panics, that it agrees
// with itself on prefixes, and that whatever it accepts as HTTP/1.1 is
// read the same way by net/http: the same method, target, Host and body
// framing, so that no request can mean one thing to this server and
// another to a proxy built on net/http (request smuggling).
//
//	go test -run '^$' -fuzz FuzzParseHead -fuzztime 60s ./internal/server/http1/
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /v1/models/m:predict HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n",
		"POST /v2/models/m/infer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 3\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET http://a/b?c HTTP/1.1\nHost: b\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET /%7e?x=%zz HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var h head
		n, err := parseHead(in, &h)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("head length %d beyond input %d", n, len(in))
		}
		if m, err := parseHead(in[:n], &h); m != n || err != nil {
			t.Fatalf("head alone: %d, %v; with what follows: %d", m, err, n)
		}
		if leadingEmptyLines(in) == 0 {
			if end := headEnd(in, 0); end != n {
				t.Fatalf("headEnd %d, parseHead %d", end, n)
			}
		}
		if h.proto != 11 {
			return // handed to net/http as it is
		}
		c := conn{intern: interner{}}
		var u url.URL
		if c.parseTarget(h.target, &u) != nil {
			return // answered 400
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in[:n])))
		if err != nil {
			t.Fatalf("accepted here, refused by net/http: %v", err)
		}
		if req.Method != string(h.method) || req.RequestURI != string(h.target) {
			t.Fatalf("net/http reads %q %q, we read %q %q", req.Method, req.RequestURI, h.method, h.target)
		}
		if req.URL.Path != u.Path || req.URL.RawQuery != u.RawQuery || req.URL.Host != u.Host {
			t.Fatalf("net/http reads URL %#v, we read %#v", req.URL, u)
		}
		if req.Host != string(h.host) && req.URL.Host == "" {
			t.Fatalf("net/http reads Host %q, we read %q", req.Host, h.host)
		}
		chunked := len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked"
		if chunked != h.chunked {
			t.Fatalf("net/http reads chunked %v, we read %v", chunked, h.chunked)
		}
		if !chunked && max(h.contentLength, 0) != req.ContentLength {
			t.Fatalf("net/http reads Content-Length %d, we read %d", req.ContentLength, h.contentLength)
		}
		if strings.EqualFold(req.Header.Get("Expect"), "100-continue") != h.expectContinue {
			t.Fatalf("net/http reads Expect %q, we read %v", req.Header.Get("Expect"), h.expectContinue)
		}
	})
}
