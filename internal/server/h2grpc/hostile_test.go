package h2grpc_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ferryserve/ferry/internal/server/h2grpc"
)

// rawClient speaks HTTP/2 frames to the server directly.
type rawClient struct {
	t   testing.TB
	nc  net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.enc = hpack.NewEncoder(&c.hb)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// headers encodes a request's header block with extra fields.
func (c *rawClient) headers(extra ...string) []byte {
	c.hb.Reset()
	fields := append([]string{":method", "POST", ":scheme", "http", ":path", "/grpc.testing.TestService/UnaryCall",
		":authority", "x", "content-type", "application/grpc", "te", "trailers"}, extra...)
	for i := 0; i < len(fields); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(c.hb.Bytes())
}

// writeBlock sends a header block (with END_STREAM) in frames of 16 KiB.
func (c *rawClient) writeBlock(id uint32, blk []byte) error {
	for i := 0; i == 0 || len(blk) > 0; i++ {
		n := min(len(blk), 16384)
		var err error
		if i == 0 {
			err = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk[:n], EndHeaders: n == len(blk), EndStream: true})
		} else {
			err = c.fr.WriteContinuation(id, n == len(blk), blk[:n])
		}
		if err != nil {
			return err
		}
		blk = blk[n:]
	}
	return nil
}

// goAway reads frames until a GOAWAY (returning its code) or the
// connection's end.
func (c *rawClient) goAway() (http2.ErrCode, bool) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return 0, false
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g.ErrCode, true
		}
	}
}

// heapGrowth runs f and returns how much the live heap grew.
func heapGrowth(f func()) int64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.GC()
	runtime.ReadMemStats(&b)
	return int64(b.HeapAlloc) - int64(a.HeapAlloc)
}

func TestRapidResetFlood(t *testing.T) {
	f := start(t, h2grpc.Config{MaxConcurrentStreams: 100})
	c := dialRaw(t, f.addr)
	start := time.Now()
	grew := heapGrowth(func() {
		go func() {
			hdr := c.headers()
			for id := uint32(1); id < 200000; id += 2 {
				// A complete call, reset at once: the handler starts.
				if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hdr, EndHeaders: true}) != nil ||
					c.fr.WriteData(id, true, []byte{0, 0, 0, 0, 0}) != nil ||
					c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					return
				}
			}
		}()
		code, ok := c.goAway()
		if !ok || code != http2.ErrCodeEnhanceYourCalm {
			t.Errorf("flood answered with %v (GOAWAY %v), want ENHANCE_YOUR_CALM", code, ok)
		}
	})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("flood took %v to stop", d)
	}
	if grew > 32<<20 {
		t.Errorf("heap grew %d bytes during the flood", grew)
	}
	// Other clients are served.
	if _, err := dialRawOK(f); err != nil {
		t.Error(err)
	}
}

func TestContinuationFlood(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := dialRaw(t, f.addr)
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.headers()[:3]}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 100000 {
			if c.fr.WriteContinuation(1, false, nil) != nil {
				return
			}
		}
	}()
	if code, ok := c.goAway(); !ok || code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("CONTINUATION flood answered with %v (GOAWAY %v), want ENHANCE_YOUR_CALM", code, ok)
	}
}

func TestOversizedHeaders(t *testing.T) {
	f := start(t, h2grpc.Config{MaxHeaderListSize: 16 << 10})
	// Over the list size in many small fields: the stream is reset, the
	// connection lives on.
	c := dialRaw(t, f.addr)
	var extra []string
	for i := range 100 {
		extra = append(extra, "x-pad-"+strings.Repeat("a", 3)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", 200))
	}
	if err := c.writeBlock(1, c.headers(extra...)); err != nil {
		t.Fatal(err)
	}
	for {
		fr, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := fr.(*http2.RSTStreamFrame); ok {
			if r.ErrCode != http2.ErrCodeFrameSize {
				t.Errorf("reset with %v", r.ErrCode)
			}
			break
		}
		if _, ok := fr.(*http2.GoAwayFrame); ok {
			t.Fatal("GOAWAY for a header list over the limit; want RST_STREAM")
		}
	}
	// One string over the limit cannot be decoded: the connection ends.
	c2 := dialRaw(t, f.addr)
	_ = c2.writeBlock(1, c2.headers("x-big", strings.Repeat("b", 64<<10)))
	if code, ok := c2.goAway(); !ok || code != http2.ErrCodeCompression {
		t.Errorf("oversized field answered with %v (GOAWAY %v), want COMPRESSION_ERROR", code, ok)
	}
	if _, err := dialRawOK(f); err != nil {
		t.Error(err)
	}
}

func TestPingFlood(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := dialRaw(t, f.addr)
	go func() {
		for i := range 100 {
			if c.fr.WritePing(false, [8]byte{byte(i)}) != nil {
				return
			}
		}
	}()
	if code, ok := c.goAway(); !ok || code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("ping flood answered with %v (GOAWAY %v), want ENHANCE_YOUR_CALM", code, ok)
	}
}

func TestBadFrames(t *testing.T) {
	f := start(t, h2grpc.Config{})
	for name, send := range map[string]func(c *rawClient) error{
		"data on stream 0":    func(c *rawClient) error { _, err := c.nc.Write([]byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 'x'}); return err },
		"data on idle stream": func(c *rawClient) error { return c.fr.WriteData(7, false, []byte("x")) },
		"even stream": func(c *rawClient) error {
			return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: c.headers(), EndHeaders: true})
		},
		"push promise": func(c *rawClient) error {
			return c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true})
		},
		"window update of zero": func(c *rawClient) error { return c.fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 0, 0}) },
		"huge frame": func(c *rawClient) error {
			return c.fr.WriteRawFrame(http2.FrameData, 0, 1, make([]byte, 20000))
		},
		"bad hpack": func(c *rawClient) error {
			return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true})
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, f.addr)
			if err := send(c); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.goAway(); !ok {
				t.Error("no GOAWAY")
			}
		})
	}
}

// dialRawOK makes one call over a fresh raw connection and checks the
// answer's trailers carry grpc-status 0.
func dialRawOK(f *fixture) (string, error) {
	c := dialRaw(testingTB{}, f.addr)
	defer c.nc.Close()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.headers(), EndHeaders: true}); err != nil {
		return "", err
	}
	if err := c.fr.WriteData(1, true, []byte{0, 0, 0, 0, 0}); err != nil {
		return "", err
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		fr, err := c.fr.ReadFrame()
		if err != nil {
			return "", err
		}
		if h, ok := fr.(*http2.HeadersFrame); ok && h.StreamEnded() {
			fields, err := dec.DecodeFull(h.HeaderBlockFragment())
			if err != nil {
				return "", err
			}
			for _, fl := range fields {
				if fl.Name == "grpc-status" && fl.Value == "0" {
					return fl.Value, nil
				}
			}
			return "", errors.New("call failed")
		} else if ok {
			if _, err := dec.DecodeFull(h.HeaderBlockFragment()); err != nil {
				return "", err
			}
		}
	}
}

// testingTB lets dialRaw run outside a test's own goroutine checks.
type testingTB struct{ testing.TB }

func (testingTB) Helper()               {}
func (testingTB) Fatal(args ...any)     { panic(args) }
func (testingTB) Cleanup(func())        {}
func (testingTB) Errorf(string, ...any) {}

// TestNonReadingClient: a client that opens every window, asks for a
// large answer, never reads, and floods SETTINGS (each asks for an ACK)
// stops being read once the unwritten output passes the bound, instead of
// growing the server's buffers.
func TestNonReadingClient(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := dialRaw(t, f.addr)
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.headers(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// SimpleRequest{response_size: 8 MiB}: field 2, varint.
	req := []byte{0x10, 0x80, 0x80, 0x80, 0x04}
	msg := append([]byte{0, 0, 0, 0, byte(len(req))}, req...)
	if err := c.fr.WriteData(1, true, msg); err != nil {
		t.Fatal(err)
	}
	grew := heapGrowth(func() {
		// 4 Mi empty SETTINGS frames (36 MiB) in large writes.
		flood := bytes.Repeat([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0}, 1<<20)
		_ = c.nc.SetWriteDeadline(time.Now().Add(3 * time.Second))
		for range 4 {
			if _, err := c.nc.Write(flood); err != nil {
				break // the server stopped reading
			}
		}
	})
	// The 8 MiB answer is in flight (the message, its encoding, and a
	// bounded piece of it being written); the 36 MiB of ACKs must not be.
	if grew > 28<<20 {
		t.Errorf("heap grew %d bytes", grew)
	}
}
