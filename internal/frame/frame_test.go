package frame

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTripAndTornTail(t *testing.T) {
	var b []byte
	for _, s := range []string{"a", "", "hello"} {
		b = Append(b, func(b []byte) []byte {
			b = append(b, 7)
			b = AppendString(b, s)
			b = AppendFloat(b, 1.5)
			return append(b, 0x81, 0x01) // uvarint 129
		})
	}
	var got []string
	lastStart := 0
	for rest := b; len(rest) > 0; {
		lastStart = len(b) - len(rest)
		p, n, err := Next(rest, 1<<20)
		if err != nil || n == 0 {
			t.Fatalf("next: %d %v", n, err)
		}
		d := NewDecoder(p)
		if d.Byte() != 7 {
			t.Fatal("type byte")
		}
		s := d.String()
		if d.Float() != 1.5 || d.Uvarint() != 129 || d.Err() != nil {
			t.Fatalf("fields of %q: %v", s, d.Err())
		}
		got = append(got, s)
		rest = rest[n:]
	}
	if len(got) != 3 || got[2] != "hello" {
		t.Fatalf("got %q", got)
	}
	// Every cut of the last frame is incomplete, never an error.
	last := b[lastStart:]
	for cut := 0; cut < len(last); cut++ {
		if _, n, err := Next(last[:cut], 1<<20); n != 0 || err != nil {
			t.Fatalf("cut %d: %d %v", cut, n, err)
		}
	}
	// A flipped payload byte fails the checksum; a huge length is refused.
	bad := bytes.Clone(last)
	bad[HeaderSize+2] ^= 1
	if _, _, err := Next(bad, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, _, err := Next(last, 4); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("over max: %v", err)
	}
}

func TestDecoderRefusesLies(t *testing.T) {
	// A length larger than what is left fails without allocating.
	d := NewDecoder([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'x'})
	if d.Bytes() != nil || d.Err() == nil {
		t.Fatal("lying length accepted")
	}
	// Reads after a failure return zero values.
	if d.Byte() != 0 || d.Varint() != 0 || d.Float() != 0 || d.String() != "" {
		t.Fatal("read after failure")
	}
	// Leftover bytes are an error too.
	d = NewDecoder([]byte{1, 2})
	d.Byte()
	if d.Err() == nil {
		t.Fatal("leftover accepted")
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0xf0, 0x3f})
	f.Fuzz(func(t *testing.T, p []byte) {
		d := NewDecoder(p)
		for !d.bad && len(d.b) > 0 {
			if s := d.Bytes(); len(s) > len(p) {
				t.Fatal("read past the payload")
			}
			d.Float()
		}
		_, _, _ = Next(p, 1<<10)
	})
}
