package v2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/protocol"
)

// scannedBodies are requests the fast path takes, from which
// TestScanRequestEdits derives the ones it nearly takes.
func scannedBodies(t *testing.T) []string {
	bodies := []string{
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,null]]}]}`,
		` { "id" : "r1", "parameters" : { "a" : -0 , "b" : 1E5 , "c" : true , "d" : "s" } , "inputs" : [ {"name":"a","datatype":"FP64","shape":[3],"data":[1e-400,-0,2.5E+3]},
		  {"name":"b","datatype":"FP32","shape":[1,1],"parameters":{"k":1.5},"data":[[7]]} ] ,` + "\r\n\t" + `"outputs":[{"name":"y","parameters":{"binary_data":false}},{"name":"z"}]} `,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[0,3],"data":[]}]}`,
	}
	b, err := os.ReadFile(filepath.Join("../../../bench/payloads", "v2-b1.json"))
	if err != nil {
		t.Fatal(err)
	}
	return append(bodies, string(b))
}

// TestScanRequestEdits truncates, cuts and overwrites the requests the fast
// path takes at every byte: the fast path must not panic, and whatever it
// still takes, the general decoder must take too and read the same way
// (under the default limits and under limits the request just fits or
// just misses).
func TestScanRequestEdits(t *testing.T) {
	subst := []byte{' ', '\f', '\v', 0, 0x7f, 0xff, '"', '\\', ',', ':', '[', ']', '{', '}', '-', '+', '.', 'e', '0', '9', 'n', 'x'}
	for _, body := range scannedBodies(t) {
		if _, _, ok := scanRequest([]byte(body), nil); !ok {
			t.Fatalf("not scanned: %s", body)
		}
		var elems int64
		if req, err := DecodeRequest([]byte(body), -1); err == nil {
			for _, in := range req.Inputs {
				elems += int64(in.Len())
			}
		}
		lims := []protocol.Limits{protocol.Limits{}.WithDefaults()}
		for _, n := range []int64{elems, elems - 1} {
			if n > 0 {
				lims = append(lims, protocol.Limits{MaxElements: n}.WithDefaults(), protocol.Limits{MaxDecodedBytes: 4 * n}.WithDefaults())
			}
		}
		check := func(b []byte) {
			for _, lim := range lims {
				checkScanAgrees(t, b, lim)
			}
		}
		for i := range len(body) + 1 {
			check([]byte(body[:i]))
			if i == len(body) {
				break
			}
			check([]byte(body[:i] + body[i+1:]))
			for _, c := range subst {
				b := []byte(body)
				b[i] = c
				check(b)
				check([]byte(body[:i] + string(c) + body[i:]))
			}
		}
	}
}

// TestScanRequestRefuses: requests the general decoder refuses, which the
// fast path must leave to it.
func TestScanRequestRefuses(t *testing.T) {
	const in = `{"name":"x","datatype":"FP32","shape":[1],"data":[1]}`
	for _, body := range []string{
		`{"inputs":[` + in + `],"inputs":[` + in + `]}`,
		`{"id":"a","id":"a","inputs":[` + in + `]}`,
		`{"parameters":{},"parameters":{},"inputs":[` + in + `]}`,
		`{"parameters":{"a":1,"a":1},"inputs":[` + in + `]}`,
		`{"outputs":[{"name":"y"}],"outputs":[{"name":"y"}],"inputs":[` + in + `]}`,
		`{"outputs":[{"name":"y","name":"z"}],"inputs":[` + in + `]}`,
		`{"outputs":[{"name":"y","parameters":{},"parameters":{}}],"inputs":[` + in + `]}`,
		`{"inputs":[{"name":"x","name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","datatype":"FP32","shape":[1],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"shape":[1],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{},"parameters":{},"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"k":1,"k":2},"data":[1]}]}`,
		"{\"inputs\":[" + in + "]}\f",
		"{\"inputs\":[" + in + "]}\v",
		"{\"inputs\":[" + in + "]}\x00",
		"\f{\"inputs\":[" + in + "]}",
		"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1\v]}]}",
		`{"inputs":[` + in + `]}]`,
		`{"inputs":[` + in + `],}`,
		`{"inputs":[` + in + `,]}`,
		`{"inputs":[]}`,
		`{}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1,2]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1099511627776],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[99999999999999,99999999999999],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1e400]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[+1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[.5]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[nul]}]}`,
		`{"inputs":[` + in + `],"parameters":{"a":1e999}}`,
		`{"inputs":[` + in + `],"parameters":{"a":null}}`,
	} {
		if _, _, err := decodeJSON([]byte(body), &reqBudget{lim: protocol.Limits{}.WithDefaults()}); err == nil {
			t.Errorf("accepted: %q", body)
		}
		checkScanAgrees(t, []byte(body), protocol.Limits{}.WithDefaults())
	}
}

// TestScanRequestStaysInBudget: the fast path allocates no more than the
// budget lets the general decoder allocate. A request of inputs that each
// fit the budget alone, but not together, must be left to the general
// decoder before the one that crosses the budget is allocated.
func TestScanRequestStaysInBudget(t *testing.T) {
	const maxBytes = 8 << 20
	lim := protocol.Limits{MaxDecodedBytes: maxBytes}.WithDefaults()
	n := maxBytes/8 - 1 // FP64 elements that fit once, not twice
	data := strings.Repeat("0,", n-1) + "0"
	var b strings.Builder
	b.WriteString(`{"inputs":[`)
	for i := range 3 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"x%d","datatype":"FP64","shape":[%d],"data":[%s]}`, i, n, data)
	}
	b.WriteString(`]}`)
	body := []byte(b.String())

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, ok := scanRequest(body, &reqBudget{lim: lim})
	runtime.ReadMemStats(&after)
	if ok {
		t.Fatal("scanned a request over the budget")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > maxBytes+maxBytes/4 {
		t.Errorf("the fast path allocated %d bytes for a budget of %d", got, maxBytes)
	}
	if _, err := DecodeRequestWithin(body, -1, lim); !errors.Is(err, protocol.ErrTooLarge) {
		t.Errorf("decoding: %v, want ErrTooLarge", err)
	}
}
