package v2

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/runtime"
)

// allocated runs fn and returns the bytes it allocated on the heap in all.
func allocated(fn func()) uint64 {
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	fn()
	goruntime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// emptyStrings is a JSON request of n empty BYTES strings under shape.
func emptyStrings(n int, shape string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"inputs":[{"name":"s","datatype":"BYTES","shape":` + shape + `,"data":[`)
	b.Grow(3 * n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`""`)
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

func wantTooLarge(t *testing.T, err error, flag string) {
	t.Helper()
	if !errors.Is(err, protocol.ErrTooLarge) || !strings.Contains(err.Error(), flag) {
		t.Fatalf("got %v, want ErrTooLarge naming %s", err, flag)
	}
	if code, gc := protocol.Status(err); code != http.StatusRequestEntityTooLarge || gc != codes.ResourceExhausted {
		t.Fatalf("status %d/%v, want 413/ResourceExhausted", code, gc)
	}
}

// Issue 16: 30 M empty BYTES strings in a 90 MB body reached 1.5 GB.
func TestEmptyStringFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 90 MB body")
	}
	const n = 30_000_000
	for _, tc := range []struct{ name, shape string }{
		{"honest shape", fmt.Sprint("[", n, "]")},
		{"lying shape", "[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := emptyStrings(n, tc.shape)
			var err error
			got := allocated(func() { _, err = DecodeRequest(body, -1) })
			t.Logf("%d MB body: %d MB allocated: %v", len(body)>>20, got>>20, err)
			if err == nil {
				t.Fatal("decoded")
			}
			if tc.shape == "[1]" {
				if !errors.Is(err, protocol.ErrBadRequest) {
					t.Fatalf("got %v, want ErrBadRequest", err)
				}
			} else {
				wantTooLarge(t, err, "--max-request-decoded-bytes")
			}
			if got > 64<<20 {
				t.Errorf("allocated %d MB, want under 64 MB", got>>20)
			}
		})
	}
}

// A lying shape cannot grow a tensor past the budget either: data with no
// shape bound (the budget is smaller than the data) stops at the budget.
func TestDecodeLimits(t *testing.T) {
	lim := protocol.Limits{MaxElements: 1000, MaxDecodedBytes: 4000}
	fp := func(n int) string {
		return fmt.Sprintf(`{"inputs":[{"name":"x","datatype":"FP32","shape":[%d],"data":[%s]}]}`, n, strings.TrimSuffix(strings.Repeat("1,", n), ","))
	}
	if _, err := DecodeRequestWithin([]byte(fp(1000)), -1, lim); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := DecodeRequestWithin([]byte(fp(1001)), -1, lim)
	wantTooLarge(t, err, "--max-request-elements")
	// Two inputs share one budget.
	two := `{"inputs":[{"name":"a","datatype":"INT64","shape":[400],"data":[` + strings.TrimSuffix(strings.Repeat("1,", 400), ",") +
		`]},{"name":"b","datatype":"INT64","shape":[101],"data":[` + strings.TrimSuffix(strings.Repeat("1,", 101), ",") + `]}]}`
	_, err = DecodeRequestWithin([]byte(two), -1, lim)
	wantTooLarge(t, err, "--max-request-decoded-bytes")
	// BYTES payloads count.
	big := `{"inputs":[{"name":"s","datatype":"BYTES","shape":[2],"data":["` + strings.Repeat("x", 2000) + `","` + strings.Repeat("y", 2000) + `"]}]}`
	_, err = DecodeRequestWithin([]byte(big), -1, lim)
	wantTooLarge(t, err, "--max-request-decoded-bytes")
}

// The binary extension is checked from the declared shape before splitting.
func TestBinaryLimits(t *testing.T) {
	const n = 1_000_000
	raw := make([]byte, 4*n) // n empty BYTES elements: a zero length each
	js := fmt.Sprintf(`{"inputs":[{"name":"s","datatype":"BYTES","shape":[%d],"parameters":{"binary_data_size":%d}}]}`, n, len(raw))
	body := append([]byte(js), raw...)
	lim := protocol.Limits{MaxDecodedBytes: 8 << 20}
	var err error
	got := allocated(func() { _, err = DecodeRequestWithin(body, len(js), lim) })
	wantTooLarge(t, err, "--max-request-decoded-bytes")
	if got > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", got)
	}
	if _, err := DecodeRequestWithin(body, len(js), protocol.Limits{}); err != nil {
		t.Fatalf("under the default limits: %v", err)
	}
}

func TestGRPCLimits(t *testing.T) {
	in := &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "s", Datatype: "BYTES", Shape: []int64{3000},
		Contents: &pb.InferTensorContents{BytesContents: make([][]byte, 3000)},
	}}}
	_, err := FromProtoWithin(in, protocol.Limits{MaxElements: 2999})
	wantTooLarge(t, err, "--max-request-elements")
	if _, err := FromProtoWithin(in, protocol.Limits{MaxElements: 3000}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	// Contents longer than the shape count too.
	in.Inputs[0].Shape = []int64{1}
	_, err = FromProtoWithin(in, protocol.Limits{MaxElements: 2999})
	wantTooLarge(t, err, "--max-request-elements")
	// Raw contents are checked from the shape.
	in.Inputs[0].Shape = []int64{1 << 20}
	in.Inputs[0].Contents = nil
	in.RawInputContents = [][]byte{make([]byte, 4<<20)}
	_, err = FromProtoWithin(in, protocol.Limits{MaxDecodedBytes: 1 << 20})
	wantTooLarge(t, err, "--max-request-decoded-bytes")
}

// ferry serve sets its flags' limits through the middleware; the REST
// handler answers 413 with the flag's name.
func TestRESTLimitsMiddleware(t *testing.T) {
	mux := http.NewServeMux()
	NewService(Config{}).Register(mux)
	h := protocol.LimitsMiddleware(protocol.Limits{MaxElements: 4})(mux)
	body := `{"inputs":[{"name":"x","datatype":"FP32","shape":[5],"data":[1,2,3,4,5]}]}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(body)))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "--max-request-elements") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestBudgetStatus(t *testing.T) {
	err := fmt.Errorf("model %q: %w", "m", fmt.Errorf("%w: intermediate tensors", runtime.ErrBudget))
	if code, gc := protocol.Status(err); code != http.StatusRequestEntityTooLarge || gc != codes.ResourceExhausted {
		t.Fatalf("status %d/%v, want 413/ResourceExhausted", code, gc)
	}
}
