package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name, in string
		head     bool
		status   int
		closing  bool
		err      error // wrapped; nil: none
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", status: 204},
		{name: "case and spaces", in: "HTTP/1.1 201 Created\r\ncontent-length:   3 \r\n\r\nabc", status: 201},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", status: 200},
		{name: "chunked with trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", status: 200},
		{name: "chunked over content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", status: 200},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: 200},
		{name: "non-2xx", in: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", status: 503},
		{name: "interim 100 skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", status: 200},
		{name: "no body for 304", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304},
		{name: "no body for HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head: true, status: 200},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 200, closing: true},
		{name: "1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, closing: true},
		{name: "1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "bad status line", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: errMalformed},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", err: errMalformed},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", err: errMalformed},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: errMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: errMalformed},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n", err: errMalformed},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: io.EOF},
		{name: "line over the buffer", in: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 64) + "\r\n\r\n", err: errMalformed},
		{name: "cut head", in: "HTTP/1.1 200 OK\r\nContent-Len", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What follows the answer must be left unread.
			br := bufio.NewReaderSize(strings.NewReader(tt.in+"NEXT"), 48)
			status, closing, err := readResponse(br, tt.head)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || closing != tt.closing {
				t.Errorf("status %d closing %v, want %d %v", status, closing, tt.status, tt.closing)
			}
			if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
				t.Errorf("left %q unread, want \"NEXT\"", rest)
			}
		})
	}
}

func TestReadResponseToClose(t *testing.T) {
	// Neither length nor chunking: the body runs to the connection's end.
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\n\r\nall of it"))
	status, closing, err := readResponse(br, false)
	if err != nil || status != 200 || !closing {
		t.Fatalf("status %d closing %v err %v, want 200 true nil", status, closing, err)
	}
}

func TestReadResponseDoesNotAllocate(t *testing.T) {
	const resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
	r := strings.NewReader("")
	br := bufio.NewReader(r)
	if n := testing.AllocsPerRun(100, func() {
		r.Reset(resp)
		br.Reset(r)
		for range 2 {
			if _, _, err := readResponse(br, false); err != nil {
				t.Fatal(err)
			}
		}
	}); n != 0 {
		t.Errorf("reading two answers allocates %v times", n)
	}
}
