package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// errMalformed is wrapped by every error about a response that is not
// HTTP/1.1 as this reader understands it.
var errMalformed = errors.New("malformed response")

// readResponse reads one whole HTTP/1.x response from br and returns its
// status code and whether the server will close the connection after it.
// The body is discarded: its length comes from Content-Length, from the
// chunked encoding (chunk extensions and trailers skipped), or, when
// neither is given, from the connection's end. Interim 1xx responses are
// skipped. It allocates nothing for a well-formed response whose lines fit
// in br's buffer. head says the request was HEAD (no body follows).
func readResponse(br *bufio.Reader, head bool) (status int, closing bool, err error) {
	for {
		status, closing, length, chunked, err := readHead(br)
		if err != nil {
			return 0, false, err
		}
		if status >= 100 && status < 200 && status != 101 {
			continue
		}
		switch {
		case head || status == 204 || status == 304 || status == 101:
		case chunked:
			err = skipChunked(br)
		case length >= 0:
			_, err = br.Discard(int(length))
		default:
			_, err = io.Copy(io.Discard, br)
			closing = true
		}
		if err != nil {
			return 0, false, fmt.Errorf("body: %w", err)
		}
		return status, closing, nil
	}
}

// readHead reads a status line and the header fields after it. length is
// -1 when there is no Content-Length.
func readHead(br *bufio.Reader) (status int, closing bool, length int64, chunked bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, false, 0, false, err
	}
	// "HTTP/1.1 200 OK": a version, a three-digit code, an optional reason.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, false, 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		status = status*10 + int(c-'0')
	}
	http10 := line[7] == '0'
	keepAlive := false
	length = -1
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, false, 0, false, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, false, 0, false, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, perr := strconv.ParseInt(string(value), 10, 64) // string(value) does not escape here
			if perr != nil || n < 0 {
				return 0, false, 0, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = hasToken(value, "chunked")
		case bytes.EqualFold(name, []byte("Connection")):
			closing = closing || hasToken(value, "close")
			keepAlive = keepAlive || hasToken(value, "keep-alive")
		}
	}
	if http10 && !keepAlive {
		closing = true
	}
	return status, closing, length, chunked, nil
}

// skipChunked discards a chunked body and its trailer section.
func skipChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		size, err := strconv.ParseUint(string(line), 16, 62)
		if err != nil || len(line) == 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			for { // trailer fields, up to the empty line
				line, err := readLine(br)
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size)); err != nil {
			return err
		}
		if line, err := readLine(br); err != nil {
			return err
		} else if len(line) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

// readLine returns the next line without its CRLF (or bare LF). The slice
// is valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, br.Size())
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// hasToken reports whether a comma-separated header value lists token,
// ignoring case.
func hasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var part []byte
		part, value, _ = bytes.Cut(value, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(token)) {
			return true
		}
	}
	return false
}
