package pickle

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Compression is how a joblib file's pickle stream is compressed.
type Compression string

// The compressions joblib writes (joblib/compressor.py), told apart by
// their magic bytes.
const (
	None  Compression = ""
	Zlib  Compression = "zlib"
	Gzip  Compression = "gzip"
	BZ2   Compression = "bz2"
	XZ    Compression = "xz"
	LZMA  Compression = "lzma"
	oldZF Compression = "zfile"
)

// Sniff names the compression a file's first bytes announce.
func Sniff(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z'}):
		return XZ
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte("BZh")):
		return BZ2
	case bytes.HasPrefix(head, []byte{']', 0, 0}):
		return LZMA
	case bytes.HasPrefix(head, []byte("ZF")):
		return oldZF
	case len(head) > 0 && head[0] == 0x78:
		return Zlib
	}
	return None
}

// Load reads a pickle or joblib file from r, decompressing it first if its
// magic bytes say joblib compressed it. Each joblib NumpyArrayWrapper is
// replaced by the array whose bytes follow it. The decompressed stream is
// bounded by Options.MaxBytes and what it decodes to by Options.Budget, so a
// small compressed file cannot inflate without limit.
func Load(ctx context.Context, r io.Reader, opts Options) (any, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(8)
	var body io.Reader = br
	var err error
	switch c := Sniff(head); c {
	case None:
	case Zlib:
		body, err = zlib.NewReader(br)
	case Gzip:
		body, err = gzip.NewReader(br)
	case BZ2:
		body = bzip2.NewReader(br)
	case XZ:
		body, err = xz.NewReader(br)
	case LZMA:
		body, err = lzma.NewReader(br)
	default:
		return nil, fmt.Errorf("%w: joblib %s files (written by joblib < 0.10)", ErrUnsupported, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: compressed stream header: %w", ErrCorrupt, err)
	}
	return Decode(ctx, body, true, opts)
}
