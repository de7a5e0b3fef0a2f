package api

import "testing"

func TestQuantityBytes(t *testing.T) {
	for in, want := range map[Quantity]int64{
		"1500": 1500, "1Ki": 1024, "256Mi": 256 << 20, "1G": 1e9, "1.5Gi": 3 << 29,
		"1Pi": 1 << 50, "4Ei": 1 << 62, "1k": 1000, "2e3": 2000, "1m": 1, "0": 0,
	} {
		if got, err := in.Bytes(); err != nil || got != want {
			t.Errorf("Quantity(%q).Bytes() = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []Quantity{"", "x", "-1Mi", "1Zi", "1K", "5Ei", "1e400"} {
		if got, err := bad.Bytes(); err == nil {
			t.Errorf("Quantity(%q).Bytes() = %d; want an error", bad, got)
		}
	}
}
