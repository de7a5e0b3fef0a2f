package pickle

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// repeatReader yields head, then body repeated until n bytes were given.
type repeatReader struct {
	head, body []byte
	n          int64 // bytes left
	off        int
	read       int64
	onRead     func(total int64)
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.n > 0 {
		var c int
		if len(r.head) > 0 {
			c = copy(p[k:], r.head)
			r.head = r.head[c:]
		} else {
			c = copy(p[k:], r.body[r.off:])
			r.off = (r.off + c) % len(r.body)
		}
		c = int(min(int64(c), r.n))
		k += c
		r.n -= int64(c)
	}
	r.read += int64(k)
	if r.onRead != nil {
		r.onRead(r.read)
	}
	return k, nil
}

// zlibOf compresses head + body×times as joblib's zlib compressor would.
func zlibOf(t testing.TB, head, body []byte, times int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(head)
	chunk := bytes.Repeat(body, max(1, (1<<20)/len(body)))
	per := len(chunk) / len(body)
	for left := times; left > 0; left -= per {
		n := min(left, per)
		zw.Write(chunk[:n*len(body)])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// allocated runs fn and returns the bytes it allocated on the heap in all.
func allocated(fn func()) uint64 {
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	fn()
	goruntime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The files of issue 16: each few bytes on disk, gigabytes once decoded.
// Every one must fail with the budget error, fast, having allocated little.
func TestMemoryBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100 MB streams")
	}
	const budget = 64 << 20
	const allocCap = 256 << 20
	proto4 := []byte{0x80, 0x04}
	// scale shrinks the streams under the race detector (see raceEnabled).
	scale := func(n int) int {
		if raceEnabled {
			return n / 25
		}
		return n
	}
	cases := []struct {
		name   string
		load   func() (any, error)
		detail string
	}{
		{
			// 97 KB on disk; 2.5 GB before the MARK cap existed.
			name: "zlib joblib of 100 M MARKs (default budget)",
			load: func() (any, error) {
				z := zlibOf(t, proto4, []byte{'('}, scale(100_000_000))
				t.Logf("compressed size %d bytes", len(z))
				return Load(t.Context(), bytes.NewReader(z), Options{})
			},
			detail: "open MARKs",
		},
		{
			// A run of MEMOIZE on one value: 1 byte in, one memo entry out.
			name: "zlib MEMOIZE run",
			load: func() (any, error) {
				z := zlibOf(t, append(proto4, 'N'), []byte{0x94}, scale(50_000_000))
				t.Logf("compressed size %d bytes", len(z))
				return Load(t.Context(), bytes.NewReader(z), Options{Budget: budget})
			},
			detail: "the memo",
		},
		{
			// A 1 MB file: a list fed its own reference through DUP and
			// APPENDS, each byte a new element.
			name: "1 MB DUP/APPENDS run",
			load: func() (any, error) {
				body := append(append([]byte{'('}, bytes.Repeat([]byte{'2'}, 1000)...), 'e')
				head := append(append([]byte{}, proto4...), ']')
				r := &repeatReader{head: head, body: body, n: 1 << 20}
				return Decode(t.Context(), r, true, Options{Budget: 8 << 20})
			},
			detail: "container",
		},
		{
			// DUP without bound is capped by the stack; APPENDS with a
			// zlib stream goes on to 100 M elements.
			name: "zlib DUP/APPENDS run",
			load: func() (any, error) {
				body := append(append([]byte{'('}, bytes.Repeat([]byte{'2'}, 1000)...), 'e')
				z := zlibOf(t, append(append([]byte{}, proto4...), ']'), body, scale(100_000))
				t.Logf("compressed size %d bytes", len(z))
				return Load(t.Context(), bytes.NewReader(z), Options{Budget: budget})
			},
			detail: "container",
		},
		{
			// A joblib array header declaring 128 MB of data that never follows.
			name: "joblib array larger than the budget",
			load: func() (any, error) {
				return Decode(t.Context(), bytes.NewReader(wrapperHeader(1<<24)), true, Options{Budget: budget})
			},
			detail: "value at byte",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			start := time.Now()
			n := allocated(func() { _, err = c.load() })
			took := time.Since(start)
			t.Logf("error after %v, %d MB allocated: %v", took.Round(time.Millisecond), n>>20, err)
			var be *BudgetError
			if !errors.As(err, &be) || !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), c.detail) {
				t.Fatalf("got %v, want a budget error about %q", err, c.detail)
			}
			if n > allocCap {
				t.Errorf("allocated %d MB, want under %d MB", n>>20, allocCap>>20)
			}
		})
	}
}

// wrapperHeader is a protocol-2 joblib NumpyArrayWrapper for n float64s,
// without the array bytes that should follow it.
func wrapperHeader(n int32) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x80, 0x02})
	b.WriteString("cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(")
	str := func(s string) { b.WriteByte(0x8c); b.WriteByte(byte(len(s))); b.WriteString(s) }
	str("shape")
	b.WriteByte('J')
	b.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	b.WriteByte(0x85)
	str("dtype")
	b.WriteString("cnumpy\ndtype\n")
	str("f8")
	b.Write([]byte{0x85, 'R'})
	str("order")
	str("C")
	b.Write([]byte{'u', 'b'})
	return b.Bytes()
}

// A decode ends soon after its context does, even inside an endless run of
// opcodes that allocate nothing.
func TestDecodeStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	const cancelAt = 4 << 20
	r := &repeatReader{head: []byte{0x80, 0x04, 'N'}, body: []byte{'2', '0'}, n: 1 << 40}
	r.onRead = func(total int64) {
		if total >= cancelAt {
			cancel()
		}
	}
	_, err := Decode(ctx, r, false, Options{MaxBytes: 1 << 40})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if r.read > cancelAt+256<<10 {
		t.Errorf("read %d bytes, %d past the cancellation", r.read, r.read-cancelAt)
	}
}

// A long string within the budget decodes; one byte of budget less refuses it.
func TestBudgetBoundary(t *testing.T) {
	n := 1 << 20
	p := append([]byte{0x80, 0x04, 0x8e}, byte(n), byte(n>>8), byte(n>>16), byte(n>>24), 0, 0, 0, 0)
	p = append(append(p, make([]byte, n)...), '.')
	need := int64(n) + costSlot
	if _, err := Decode(t.Context(), bytes.NewReader(p), false, Options{Budget: need}); err != nil {
		t.Fatalf("at the budget: %v", err)
	}
	_, err := Decode(t.Context(), bytes.NewReader(p), false, Options{Budget: need - 1})
	var be *BudgetError
	if !errors.As(err, &be) || be.Limit != need-1 {
		t.Fatalf("over the budget: got %v", err)
	}
}
