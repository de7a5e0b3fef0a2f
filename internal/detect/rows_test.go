package detect

import (
	"errors"
	"net"
	"reflect"
	"testing"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestRows(t *testing.T) {
	for _, c := range []struct {
		body string
		want [][]float64
	}{
		{`{"instances": [[1, 2], [3, 4]]}`, [][]float64{{1, 2}, {3, 4}}},
		{`{"instances": [5, 6]}`, [][]float64{{5}, {6}}},
		{`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`, [][]float64{{1, 2}, {3, 4}}},
		{`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]}]}`, [][]float64{{1, 2}, {3, 4}}},
		{`{"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 3]}, {"name": "b", "shape": [2, 1], "datatype": "BOOL", "data": [true, false]}]}`, [][]float64{{1, 1}, {3, 0}}},
	} {
		got, err := Rows([]byte(c.body), 1000)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v %v, want %v", c.body, got, err, c.want)
		}
	}
	for _, body := range []string{
		`{}`, `[]`, `{"instances": []}`, `{"instances": [["a"]]}`, `{"instances": [[1], [1, 2]]}`,
		`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}`,
		`{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}`,
		`{"inputs": [{"name": "x", "shape": [2, 2, 1], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`,
		`{"inputs": [{"name": "a", "shape": [2], "data": [1, 2]}, {"name": "b", "shape": [3], "data": [1, 2, 3]}]}`,
		`{"inputs": [{"name": "x", "shape": [-1, 2], "datatype": "FP32", "data": []}]}`,
		`{"inputs": [{"name": "x", "shape": [1000000, 1000000], "datatype": "FP32", "data": [1]}]}`,
	} {
		if _, err := Rows([]byte(body), 3); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: %v, want ErrBadBody", body, err)
		}
	}
}

func FuzzRows(f *testing.F) {
	f.Add([]byte(`{"instances": [[1, 2], [3, 4]]}`))
	f.Add([]byte(`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}`))
	f.Add([]byte(`{"inputs": [{"name": "a", "shape": [2], "data": [1, 3]}, {"name": "b", "shape": [2, 1], "data": [true, false]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := Rows(b, 1<<12)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("error not ErrBadBody: %v", err)
			}
			return
		}
		if len(rows) == 0 || len(rows)*len(rows[0]) > 1<<12 {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			if len(r) != len(rows[0]) || len(r) == 0 {
				t.Fatal("ragged rows")
			}
		}
	})
}
