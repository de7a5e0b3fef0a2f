package http1

import (
	"bytes"
	"errors"
)

// Head parse errors. Each maps to the status the client gets before the
// connection is closed.
var (
	errMalformed      = errors.New("malformed request head")                     // 400
	errBadHost        = errors.New("missing, repeated or malformed Host header") // 400
	errBadLength      = errors.New("invalid Content-Length")                     // 400
	errTEAndLength    = errors.New("both Transfer-Encoding and Content-Length")  // 400
	errUnsupportedTE  = errors.New("unsupported Transfer-Encoding")              // 501
	errBadExpectation = errors.New("unsupported Expect")                         // 417
)

// field is one header line; name and value alias the read buffer.
type field struct {
	name, value []byte
}

// head is one parsed request head. Its byte slices alias the connection's
// read buffer and are valid until the head's bytes are discarded.
type head struct {
	method, target []byte
	// proto is 11 for HTTP/1.1, 10 for HTTP/1.0 and 0 for anything else
	// (HTTP/2's preface included); only 11 is served natively.
	proto          int
	contentLength  int64 // -1 when absent
	chunked        bool
	connClose      bool // Connection: close
	connUpgrade    bool // Connection: upgrade, or an Upgrade header
	expectContinue bool
	host           []byte
	hosts          int
	fields         []field
}

func (h *head) reset() {
	*h = head{contentLength: -1, fields: h.fields[:0]}
}

// headEnd returns the length of the head at the start of buf, up to and
// including the empty line that ends it, or 0 when buf does not hold it
// yet. from is how much of buf an earlier call already scanned, so that a
// head arriving in many small reads is scanned once, not once per read.
// buf must not start with an empty line (the connection drops those).
func headEnd(buf []byte, from int) int {
	for i := max(from-2, 0); ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(buf) && buf[i] == '\n':
			return i + 1
		case i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n':
			return i + 2
		}
	}
}

// parseHead parses the request line and header fields at the start of buf.
// It returns the head's length including its final empty line, or 0 with a
// nil error when buf does not hold the whole head yet. Lines may end in
// CRLF or a bare LF, as net/http accepts.
func parseHead(buf []byte, h *head) (int, error) {
	h.reset()
	line, n := nextLine(buf, 0)
	if n < 0 {
		return 0, nil
	}
	if err := parseRequestLine(line, h); err != nil {
		return 0, err
	}
	for {
		var next int
		line, next = nextLine(buf, n)
		if next < 0 {
			return 0, nil
		}
		n = next
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return 0, errMalformed // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, errMalformed
		}
		name := line[:colon]
		for _, c := range name {
			if !isToken(c) {
				return 0, errMalformed
			}
		}
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return 0, errMalformed
			}
		}
		if err := h.addField(name, value); err != nil {
			return 0, err
		}
	}
	if h.proto == 11 && h.hosts != 1 || !validHost(h.host) {
		return 0, errBadHost
	}
	if h.chunked && h.contentLength >= 0 {
		return 0, errTEAndLength
	}
	return n, nil
}

// nextLine returns the line starting at buf[off] without its line ending,
// and the offset after that ending; -1 when buf holds no complete line.
func nextLine(buf []byte, off int) ([]byte, int) {
	i := bytes.IndexByte(buf[off:], '\n')
	if i < 0 {
		return nil, -1
	}
	line := buf[off : off+i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, off + i + 1
}

func parseRequestLine(line []byte, h *head) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errMalformed
	}
	h.method = line[:sp]
	for _, c := range h.method {
		if !isToken(c) {
			return errMalformed
		}
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errMalformed
	}
	h.target = rest[:sp]
	for _, c := range h.target {
		if c <= ' ' || c == 0x7f {
			return errMalformed
		}
	}
	switch proto := rest[sp+1:]; string(proto) {
	case "HTTP/1.1":
		h.proto = 11
	case "HTTP/1.0":
		h.proto = 10
	default:
		if len(proto) < 5 || string(proto[:5]) != "HTTP/" {
			return errMalformed
		}
		h.proto = 0 // HTTP/2.0 (the h2c preface) and others: net/http decides
	}
	return nil
}

func (h *head) addField(name, value []byte) error {
	h.fields = append(h.fields, field{name, value})
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			h.host = value
			h.hosts++
		}
	case 6:
		if equalFold(name, "expect") {
			if !equalFold(value, "100-continue") {
				return errBadExpectation
			}
			h.expectContinue = true
		}
	case 7:
		if equalFold(name, "upgrade") {
			h.connUpgrade = true
		}
	case 10:
		if equalFold(name, "connection") {
			h.parseConnection(value)
		}
	case 14:
		if equalFold(name, "content-length") {
			n, ok := parseLength(value)
			if !ok || h.contentLength >= 0 && h.contentLength != n {
				return errBadLength
			}
			h.contentLength = n
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			if h.chunked || !equalFold(value, "chunked") {
				return errUnsupportedTE
			}
			h.chunked = true
		}
	}
	return nil
}

// parseConnection reads the comma-separated options of a Connection field.
func (h *head) parseConnection(v []byte) {
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		tok = trimOWS(tok)
		switch {
		case equalFold(tok, "close"):
			h.connClose = true
		case equalFold(tok, "upgrade"):
			h.connUpgrade = true
		}
	}
}

// parseLength parses a Content-Length: decimal digits only, at most 18 of
// them (no sign, no overflow).
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// validHost reports whether a Host value holds only the bytes a host and
// port may (RFC 3986 reg-name, IP literal, port), as net/http checks.
func validHost(b []byte) bool {
	for _, c := range b {
		if c >= 128 || !hostTable[c] {
			return false
		}
	}
	return true
}

var hostTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~!$&'()*+,;=%:[]" {
		t[c] = true
	}
	return t
}()

// isToken reports whether c may appear in a method or a field name
// (RFC 9110 tchar).
func isToken(c byte) bool { return c < 128 && tokenTable[c] }

var tokenTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
