package pickle

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plain turns decoded values into comparable Go values.
func plain(v any) any {
	switch v := v.(type) {
	case Tuple:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	case *List:
		return plain(Tuple(v.Items))
	case *Set:
		return map[string]any{"set": plain(Tuple(v.Items))}
	case *Dict:
		out := map[any]any{}
		for i, k := range v.Keys {
			out[k] = plain(v.Values[i])
		}
		return out
	case *Array:
		if v.Dtype.Kind == 'O' {
			return map[string]any{"shape": v.Shape, "obj": plain(Tuple(v.Objects))}
		}
		if v.Dtype.Kind == 'U' {
			s, _ := v.Strings()
			return map[string]any{"shape": v.Shape, "str": s}
		}
		f, _ := v.Float64s()
		return map[string]any{"shape": v.Shape, "f": f}
	case *big.Int:
		return v.String()
	}
	return v
}

// Pickles written by CPython 3.11 and numpy 1.24 (pickle.dumps(value, protocol)).
func TestDecodeValues(t *testing.T) {
	cases := []struct {
		name, hex string
		want      any
	}{
		{"int p2", "80024b052e", int64(5)},
		{"negative p2", "80024a90eefeff2e", int64(-70000)},
		{"big int p4", "8004950c000000000000008a090000000000000000402e", "1180591620717411303424"},
		{"float p0", "46312e350a2e", 1.5},
		{"str p4", "8004950a000000000000008c0668c3a96c6c6f942e", "héllo"},
		{"bytes p3", "80034302000171002e", Bytes{0, 1}},
		{"tuple p2", "8002284b0158010000006171004e887471012e", []any{int64(1), "a", nil, true}},
		{"list p1", "5d7100284b015d7101284b024b0365652e", []any{int64(1), []any{int64(2), int64(3)}}},
		{"dict p4", "8004951b000000000000007d94288c0161944b018c0162945d9447400400000000000061752e",
			map[any]any{"a": int64(1), "b": []any{2.5}}},
		{"set p4", "80049507000000000000008f94284b07902e", map[string]any{"set": []any{int64(7)}}},
		{"list p0", "286c70300a49310a6156780a70310a6146322e350a612e", []any{int64(1), "x", 2.5}},
		{"OrderedDict p2", "800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710158010000006b71024b01732e",
			map[any]any{"k": int64(1)}},
		{"float64 array p2", "8002636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7100636e756d70790a6e6461727261790a71014b00857102635f636f646563730a656e636f64650a7103580100000062710458060000006c6174696e317105867106527107877108527109284b014b024b0286710a636e756d70790a64747970650a710b58020000006638710c898887710d52710e284b0358010000003c710f4e4e4e4affffffff4affffffff4b00747110628968035821000000000000000000c3b03f00000000000000400000000000000840000000000000104071116805867112527113747114622e",
			map[string]any{"shape": []int{2, 2}, "f": []float64{1, 2, 3, 4}}},
		{"big-endian Fortran float32 array p2", "8002636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7100636e756d70790a6e6461727261790a71014b00857102635f636f646563730a656e636f64650a7103580100000062710458060000006c6174696e317105867106527107877108527109284b014b024b0386710a636e756d70790a64747970650a710b58020000006634710c898887710d52710e284b0358010000003e710f4e4e4e4affffffff4affffffff4b0074711062886803581c0000003fc280000040c28000004000000040c2a000004040000040c380000071116805867112527113747114622e",
			map[string]any{"shape": []int{2, 3}, "f": []float64{1, 2, 3, 4, 5, 6}}},
		{"int64 array p5 (_frombuffer)", "80059593000000000000008c126e756d70792e636f72652e6e756d65726963948c0b5f66726f6d627566666572949394289620000000000000000000000000000000010000000000000002000000000000000300000000000000948c056e756d7079948c0564747970659493948c02693894898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494624b0485948c014394749452942e",
			map[string]any{"shape": []int{4}, "f": []float64{0, 1, 2, 3}}},
		{"str array p4", "80049592000000000000008c156e756d70792e636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b02859468038c0564747970659493948c02553294898887945294284b038c013c944e4e4e4b084b044b0874946289431061000000620000006300000000000000947494622e",
			map[string]any{"shape": []int{2}, "str": []string{"ab", "c"}}},
		{"object array p2", "8002636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7100636e756d70790a6e6461727261790a71014b00857102635f636f646563730a656e636f64650a7103580100000062710458060000006c6174696e317105867106527107877108527109284b014b0285710a636e756d70790a64747970650a710b58020000004f38710c898887710d52710e284b0358010000007c710f4e4e4e4affffffff4affffffff4b3f74711062895d71112858010000007871124b0165747113622e",
			map[string]any{"shape": []int{2}, "obj": []any{"x", int64(1)}}},
		{"numpy scalar p4", "80049569000000000000008c156e756d70792e636f72652e6d756c74696172726179948c067363616c61729493948c056e756d7079948c0564747970659493948c02663894898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494624308000000000000024094869452942e", 2.25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Decode(t.Context(), bytes.NewReader(mustHex(t, c.hex)), false, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := plain(v); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, hex string
		want      error
	}{
		{"empty", "", ErrCorrupt},
		{"no STOP", "80024b05", ErrCorrupt},
		{"STOP on empty stack", "2e", ErrCorrupt},
		{"unknown opcode", "8002ff2e", ErrCorrupt},
		{"protocol 6", "80062e", ErrUnsupported},
		{"memo miss", "800268052e", ErrCorrupt},
		{"APPEND to int", "80024b014b02612e", ErrCorrupt},
		{"huge length", "800242ffffff7f2e", ErrBudget}, // refused before any read
		{"8-byte huge length", "80048effffffffffffff7f2e", ErrCorrupt},
		{"persistent id", "80024b01512e", ErrUnsupported},
		{"out-of-band buffer", "8005972e", ErrUnsupported},
		{"REDUCE on int", "80024b012952", ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(t.Context(), bytes.NewReader(mustHex(t, c.hex)), true, Options{})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestMaxBytes(t *testing.T) {
	// A 1000-byte bytes value under a 100-byte limit.
	p := append([]byte{0x80, 0x03, 'B', 0xe8, 0x03, 0, 0}, make([]byte, 1000)...)
	p = append(p, '.')
	_, err := Decode(t.Context(), bytes.NewReader(p), false, Options{MaxBytes: 100})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "100-byte limit") {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

// A small compressed file that inflates past the budget is refused.
func TestDecompressionBudget(t *testing.T) {
	n := 4 << 20
	p := append([]byte{0x80, 0x04, 0x8e}, byte(n), byte(n>>8), byte(n>>16), byte(n>>24), 0, 0, 0, 0)
	p = append(p, make([]byte, n)...)
	p = append(p, '.')
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(p)
	zw.Close()
	if buf.Len() > 64<<10 {
		t.Fatalf("compressed test input is %d bytes", buf.Len())
	}
	if _, err := Load(t.Context(), bytes.NewReader(buf.Bytes()), Options{MaxBytes: 1 << 20}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	v, err := Load(t.Context(), bytes.NewReader(buf.Bytes()), Options{MaxBytes: 8 << 20})
	if err != nil || len(v.(Bytes)) != n {
		t.Fatalf("within budget: %v", err)
	}
}
