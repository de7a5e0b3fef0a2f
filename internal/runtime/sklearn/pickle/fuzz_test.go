package pickle

import (
	"bytes"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the reader: it must return a value or an
// error, never panic, and stay within its byte budget.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"logreg_bin.joblib", "dtc_bin.joblib", "logreg_multi.p2.pkl", "logreg_multi.p5.pkl", "rfc_str.p4.pkl", "logreg_multi.zlib.joblib", "pipe_std_logreg.joblib"} {
		b, err := os.ReadFile("../testdata/models/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("cos\nsystem\n(Vx\ntR."))
	f.Add([]byte{0x80, 0x04, 0x8f, 0x28, 0x4b, 0x07, 0x90, 0x2e})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Load(t.Context(), bytes.NewReader(b), Options{Allow: allowTest, MaxBytes: 1 << 24})
	})
}
