package detect

import (
	"math"
	"testing"
)

func TestFastV1Rows(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
		rows int
	}{
		{`{"instances": [[1, 2.5, -3e2], [0, -0.0, 1E+3]]}`, true, 2},
		{" {\n\"instances\":[1,2,3]} \n", true, 3},
		{`{"instances": [[1, 2], [3]]}`, false, 0},
		{`{"instances": [[1, 2], 3]}`, false, 0},
		{`{"instances": [[01]]}`, false, 0},
		{`{"instances": [[.5]]}`, false, 0},
		{`{"instances": [[+1]]}`, false, 0},
		{`{"instances": [[1e999]]}`, false, 0},
		{`{"instances": [[null]]}`, false, 0},
		{`{"instances": []}`, false, 0},
		{`{"instances": [[1]], "x": 1}`, false, 0},
		{`{"instances": [[1]]}x`, false, 0},
		{`{"inputs": []}`, false, 0},
	} {
		rows, ok := fastV1Rows([]byte(c.body))
		if ok != c.ok || len(rows) != c.rows {
			t.Errorf("%s: ok %v, %d rows; want %v, %d", c.body, ok, len(rows), c.ok, c.rows)
		}
	}
}

// FuzzFastRows checks the fast path against encoding/json: whatever it
// accepts, the general path accepts with the same rows.
func FuzzFastRows(f *testing.F) {
	for _, s := range []string{
		`{"instances": [[1, 2.5, -3e2], [0, -0.0, 1E+3]]}`,
		`{"instances": [1, 2, 3]}`,
		`{"instances": [[1, 2], [3]]}`,
		`{"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}`,
		`{"Instances": [[1]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastV1Rows(b)
		slow, err := jsonRows(b, 1<<20)
		if !ok {
			if _, err2 := Rows(b, 1<<20); (err == nil) != (err2 == nil) {
				t.Fatalf("Rows and jsonRows disagree: %v / %v", err2, err)
			}
			return
		}
		if _, ferr := checkRows(fast, 1<<20); ferr != nil {
			return // both refuse a row-shape problem; jsonRows words it
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused: %v", b, err)
		}
		if len(fast) != len(slow) {
			t.Fatalf("%q: %d rows fast, %d slow", b, len(fast), len(slow))
		}
		for i := range fast {
			for j := range fast[i] {
				if math.Float64bits(fast[i][j]) != math.Float64bits(slow[i][j]) {
					t.Fatalf("%q: row %d value %d: %v fast, %v slow", b, i, j, fast[i][j], slow[i][j])
				}
			}
		}
	})
}
