package refdata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([<>|=])([a-z])(\d+)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// decodeNPY reads a NumPy array file (format versions 1 to 3).
func decodeNPY(b []byte, lim Limits) ([][]float64, error) {
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		return nil, fmt.Errorf("%w: npy: missing magic", ErrFormat)
	}
	var hlen, off int
	switch b[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("%w: npy: truncated header", ErrFormat)
		}
		h := binary.LittleEndian.Uint32(b[8:12])
		if int64(h) > int64(len(b)) {
			return nil, fmt.Errorf("%w: npy: truncated header", ErrFormat)
		}
		hlen, off = int(h), 12
	default:
		return nil, fmt.Errorf("%w: npy: version %d", ErrFormat, b[6])
	}
	if off+hlen > len(b) {
		return nil, fmt.Errorf("%w: npy: truncated header", ErrFormat)
	}
	header := string(b[off : off+hlen])
	data := b[off+hlen:]
	d := npyDescr.FindStringSubmatch(header)
	fo := npyFortran.FindStringSubmatch(header)
	sh := npyShape.FindStringSubmatch(header)
	if d == nil || fo == nil || sh == nil {
		return nil, fmt.Errorf("%w: npy: header %q", ErrFormat, header)
	}
	if d[1] == ">" {
		return nil, fmt.Errorf("%w: npy: big-endian data", ErrFormat)
	}
	size, _ := strconv.Atoi(d[3])
	read, err := npyReader(d[2], size)
	if err != nil {
		return nil, err
	}
	var dims []int
	for _, p := range strings.Split(sh[1], ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: npy: shape %q", ErrFormat, sh[1])
		}
		dims = append(dims, n)
	}
	var n, w int
	switch len(dims) {
	case 1:
		n, w = dims[0], 1
	case 2:
		n, w = dims[0], dims[1]
	default:
		return nil, fmt.Errorf("%w: npy: %d-D array, want 1-D or 2-D", ErrFormat, len(dims))
	}
	if w == 0 || n == 0 {
		return nil, fmt.Errorf("%w: npy: empty array", ErrFormat)
	}
	if n > lim.MaxValues/w {
		return nil, fmt.Errorf("%w: more than %d values", ErrFormat, lim.MaxValues)
	}
	if len(data) != n*w*size {
		return nil, fmt.Errorf("%w: npy: %d data bytes for shape %v of %d-byte values", ErrFormat, len(data), dims, size)
	}
	rows := make([][]float64, n)
	flat := make([]float64, n*w)
	for i := range rows {
		rows[i] = flat[i*w : (i+1)*w]
	}
	fortran := fo[1] == "True"
	for k := range n * w {
		v := read(data[k*size:])
		if fortran {
			rows[k%n][k/n] = v
		} else {
			flat[k] = v
		}
	}
	return rows, nil
}

func npyReader(kind string, size int) (func([]byte) float64, error) {
	le := binary.LittleEndian
	switch kind + strconv.Itoa(size) {
	case "f8":
		return func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) }, nil
	case "f4":
		return func(b []byte) float64 { return float64(math.Float32frombits(le.Uint32(b))) }, nil
	case "i8":
		return func(b []byte) float64 { return float64(int64(le.Uint64(b))) }, nil
	case "i4":
		return func(b []byte) float64 { return float64(int32(le.Uint32(b))) }, nil
	case "i2":
		return func(b []byte) float64 { return float64(int16(le.Uint16(b))) }, nil
	case "i1":
		return func(b []byte) float64 { return float64(int8(b[0])) }, nil
	case "u8":
		return func(b []byte) float64 { return float64(le.Uint64(b)) }, nil
	case "u4":
		return func(b []byte) float64 { return float64(le.Uint32(b)) }, nil
	case "u2":
		return func(b []byte) float64 { return float64(le.Uint16(b)) }, nil
	case "u1", "b1":
		return func(b []byte) float64 { return float64(b[0]) }, nil
	}
	return nil, fmt.Errorf("%w: npy: dtype %s%d", ErrFormat, kind, size)
}
