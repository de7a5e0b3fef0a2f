package h2grpc

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// fakeConn reads its input and discards what is written.
type fakeConn struct {
	r       *bytes.Reader
	written int
}

func (c *fakeConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fakeConn) CloseWrite() error                { return nil }
func (c *fakeConn) readAll() bool                    { return c.r.Len() == 0 }

type checkHealth struct {
	healthpb.UnimplementedHealthServer
}

func (checkHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{}, nil
}

// FuzzFrames runs a connection's frame and header reader over any bytes
// after the client preface: it must not panic, and must end when its input
// does, whatever the frames (the reader is synchronous here: the fake
// connection's Read returns EOF at the end of the input).
func FuzzFrames(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/grpc.health.v1.Health/Check"},
		{":authority", "x"}, {"content-type", "application/grpc"}, {"grpc-timeout", "1S"}, {"k-bin", "AAE"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	_ = fr.WriteWindowUpdate(0, 1000)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
	_ = fr.WritePing(false, [8]byte{1})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes()[:4], EndHeaders: false})
	_ = fr.WriteContinuation(3, true, hb.Bytes()[4:])
	_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 4, 8, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})

	s := NewServer(Config{MaxRecvMsgSize: 1 << 20, MaxHeaderListSize: 4 << 10})
	healthpb.RegisterHealthServer(s, checkHealth{})
	f.Cleanup(s.workers.stop)
	f.Fuzz(func(t *testing.T, in []byte) {
		fc := &fakeConn{r: bytes.NewReader(append([]byte(http2.ClientPreface), in...))}
		c := newConn(s, fc)
		c.serve()
		if !fc.readAll() {
			// The reader stopped early: only for a connection error,
			// which it answers with a GOAWAY.
			if fc.written == 0 {
				t.Fatal("stopped reading without a word")
			}
		}
	})
}
