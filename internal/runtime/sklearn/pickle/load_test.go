package pickle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// allowTest admits what the sklearn runtime's allow-list admits in spirit:
// sklearn classes and numpy's random-state records.
func allowTest(g Global) bool {
	return strings.HasPrefix(g.Module, "sklearn.") || strings.HasPrefix(g.Module, "numpy.random.") ||
		g == Global{"numpy", "float64"}
}

func loadFile(t testing.TB, path string) (any, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Load(t.Context(), f, Options{Allow: allowTest})
}

func TestLoadGoldenModels(t *testing.T) {
	files, _ := filepath.Glob("../testdata/models/*")
	if len(files) < 10 {
		t.Fatal("golden models missing")
	}
	for _, f := range files {
		if strings.Contains(f, "evil") {
			continue
		}
		if _, err := loadFile(t, f); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// Every layout joblib and pickle write decodes to the same value.
func TestLayoutsAgree(t *testing.T) {
	for _, name := range []string{"logreg_multi", "rfc_str"} {
		ref, err := loadFile(t, "../testdata/models/"+name+".joblib")
		if err != nil {
			t.Fatal(err)
		}
		for _, layout := range []string{"zlib.joblib", "gzip.joblib", "bz2.joblib", "lzma.joblib", "xz.joblib", "p2.pkl", "p4.pkl", "p5.pkl"} {
			path := "../testdata/models/" + name + "." + layout
			head, _ := os.ReadFile(path)
			if c := Sniff(head); strings.HasSuffix(layout, ".joblib") && string(c) != strings.TrimSuffix(layout, ".joblib") {
				t.Errorf("%s sniffed as %q", layout, c)
			}
			v, err := loadFile(t, path)
			if err != nil {
				t.Errorf("%s: %v", layout, err)
				continue
			}
			if !reflect.DeepEqual(plainObjects(v), plainObjects(ref)) {
				t.Errorf("%s decodes differently from the uncompressed joblib file", layout)
			}
		}
	}
}

// plainObjects is plain() that also opens *Object records.
func plainObjects(v any) any {
	switch o := v.(type) {
	case *Object:
		return map[string]any{"class": o.Class.String(), "args": plainObjects(o.Args), "state": plainObjects(o.State)}
	case Tuple:
		out := make([]any, len(o))
		for i, x := range o {
			out[i] = plainObjects(x)
		}
		return out
	case *List:
		return plainObjects(Tuple(o.Items))
	case *Dict:
		out := map[any]any{}
		for i, k := range o.Keys {
			out[k] = plainObjects(o.Values[i])
		}
		return out
	case *Array:
		if o.Dtype.Kind == 'O' {
			return map[string]any{"shape": o.Shape, "obj": plainObjects(Tuple(o.Objects))}
		}
		return map[string]any{"shape": o.Shape, "dtype": o.Dtype.String(), "data": string(o.Data)}
	}
	return plain(v)
}

// Every truncation of a golden file is an error, never a panic.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"logreg_multi.joblib", "rfc_str.p2.pkl", "logreg_multi.p5.pkl", "rfc_str.zlib.joblib"} {
		b, err := os.ReadFile("../testdata/models/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n += 1 + n/64 {
			_, err := Load(t.Context(), bytes.NewReader(b[:n]), Options{Allow: allowTest})
			if err == nil {
				t.Fatalf("%s cut at %d bytes loaded without error", name, n)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%s cut at %d: error %v is not ErrCorrupt", name, n, err)
			}
		}
	}
}
