package refdata

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var want = [][]float64{{1.5, -2.0, 3.25}, {4.0, 5.5, -6.75}}

func TestNPYFromNumPy(t *testing.T) {
	for file, w := range map[string][][]float64{
		"f8.npy":         want,
		"f4_fortran.npy": want,
		"i8_1d.npy":      {{3}, {-1}, {7}},
		"bool.npy":       {{1, 0}, {0, 1}},
	} {
		got, err := ReadFile(filepath.Join("testdata", file), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %v, want %v", file, got, w)
		}
	}
}

func TestCSVAndJSON(t *testing.T) {
	for _, c := range []struct {
		f   Format
		src string
	}{
		{CSV, "a,b,c\n1.5,-2,3.25\n4, 5.5,-6.75\n"},
		{CSV, "1.5,-2,3.25\n4,5.5,-6.75"},
		{JSON, `[[1.5,-2,3.25],[4,5.5,-6.75]]`},
		{JSON, `{"instances": [[1.5,-2,3.25],[4,5.5,-6.75]]}`},
		{JSON, `{"data": [[1.5,-2,3.25],[4,5.5,-6.75]]}`},
	} {
		got, err := Decode(strings.NewReader(c.src), c.f, Limits{})
		if err != nil {
			t.Fatalf("%s %q: %v", c.f, c.src, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %q: %v", c.f, c.src, got)
		}
	}
}

func TestRejects(t *testing.T) {
	npy, _ := os.ReadFile("testdata/f8.npy")
	for _, c := range []struct {
		f   Format
		src []byte
		lim Limits
	}{
		{CSV, []byte("1,2\n3\n"), Limits{}},
		{CSV, []byte("h\n1\nx\n"), Limits{}},
		{CSV, []byte("1,2\n3,4\n"), Limits{MaxValues: 3}},
		{JSON, []byte(`[[1,2],[3]]`), Limits{}},
		{JSON, []byte(`{"rows": [[1]]}`), Limits{}},
		{JSON, []byte(`[]`), Limits{}},
		{JSON, []byte(`[[1,2],[3,4]]`), Limits{MaxBytes: 5}},
		{NPY, npy[:len(npy)-1], Limits{}},
		{NPY, npy, Limits{MaxValues: 5}},
		{NPY, bytes.Replace(npy, []byte("<f8"), []byte(">f8"), 1), Limits{}},
		{NPY, bytes.Replace(npy, []byte("<f8"), []byte("<c8"), 1), Limits{}},
		{NPY, []byte("\x93NUMPY\x01\x00\xff\xff"), Limits{}},
	} {
		if _, err := Decode(bytes.NewReader(c.src), c.f, c.lim); !errors.Is(err, ErrFormat) {
			t.Errorf("%s %q: %v, want ErrFormat", c.f, c.src, err)
		}
	}
}

func TestReadFileFromPulledDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ref.csv"), []byte("1,2\n3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(dir, Limits{})
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.json"), []byte("[[1]]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(dir, Limits{}); !errors.Is(err, ErrFormat) {
		t.Errorf("two files: %v", err)
	}
}

func fuzzDecode(f *testing.F, format Format, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := Decode(bytes.NewReader(b), format, Limits{MaxValues: 1 << 16, MaxBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows without an error")
		}
		for _, r := range rows {
			if len(r) != len(rows[0]) || len(r) == 0 {
				t.Fatalf("ragged or empty rows: %v", rows)
			}
		}
	})
}

func FuzzCSV(f *testing.F) {
	fuzzDecode(f, CSV, []byte("a,b\n1,2\n"), []byte("1\n2\n"))
}

func FuzzJSON(f *testing.F) {
	fuzzDecode(f, JSON, []byte(`[[1,2]]`), []byte(`{"instances":[1,2]}`))
}

func FuzzNPY(f *testing.F) {
	for _, n := range []string{"f8.npy", "f4_fortran.npy", "i8_1d.npy", "bool.npy"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fuzzDecode(f, NPY)
}
