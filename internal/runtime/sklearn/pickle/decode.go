package pickle

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Options configure a decode.
type Options struct {
	// Allow reports whether a class outside the reader's built-in
	// data-only set may appear. An allowed class applied to arguments
	// (REDUCE, NEWOBJ) becomes an *Object; nothing is called.
	Allow func(Global) bool
	// MaxBytes caps the bytes read from the stream (after decompression);
	// zero means 1 GiB.
	MaxBytes int64
	// Budget caps the memory one decode may commit, in bytes: the stack,
	// marks and memo, every container element, string and bytes value and
	// numpy array data (see budget.go for the costs). Zero means
	// DefaultBudget. Exceeding it fails the decode with a *BudgetError.
	Budget int64
}

const (
	maxStack = 1 << 22
	// maxMarks bounds the open MARKs of one pickle. Picklers open one per
	// nesting level of the data, so real files stay far below it.
	maxMarks = 1 << 16
	maxDepth = 4 // nested pickles (joblib object arrays)
	// checkEvery is how many opcodes run between checks of the context.
	checkEvery = 1 << 12
)

// builtinGlobals are the globals the reader itself understands.
var builtinGlobals = map[Global]bool{
	{"numpy.core.multiarray", "_reconstruct"}:    true,
	{"numpy._core.multiarray", "_reconstruct"}:   true,
	{"numpy.core.multiarray", "scalar"}:          true,
	{"numpy._core.multiarray", "scalar"}:         true,
	{"numpy.core.numeric", "_frombuffer"}:        true,
	{"numpy._core.numeric", "_frombuffer"}:       true,
	{"numpy", "ndarray"}:                         true,
	{"numpy", "dtype"}:                           true,
	{"joblib.numpy_pickle", "NumpyArrayWrapper"}: true,
	{"copyreg", "_reconstructor"}:                true,
	{"copy_reg", "_reconstructor"}:               true,
	{"builtins", "object"}:                       true,
	{"__builtin__", "object"}:                    true,
	{"builtins", "set"}:                          true,
	{"builtins", "frozenset"}:                    true,
	{"builtins", "bytearray"}:                    true,
	{"builtins", "slice"}:                        true,
	{"__builtin__", "set"}:                       true,
	{"__builtin__", "frozenset"}:                 true,
	{"collections", "OrderedDict"}:               true,
	{"_codecs", "encode"}:                        true,
}

// Decode reads one pickle from r. If joblib is true, the stream is a joblib
// file body: each NumpyArrayWrapper is followed by its array's raw bytes.
// Decode stops with ctx's error soon after ctx is done.
func Decode(ctx context.Context, r io.Reader, joblib bool, opts Options) (any, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = 1 << 30
	}
	lr := &io.LimitedReader{R: r, N: limit}
	br := bufio.NewReaderSize(lr, 64<<10)
	d := &decoder{ctx: ctx, r: br, lim: lr, limit: limit, joblib: joblib, opts: opts, mem: newBudget(opts.Budget)}
	return d.run(0)
}

type decoder struct {
	ctx    context.Context
	r      *bufio.Reader
	lim    *io.LimitedReader
	limit  int64
	joblib bool
	opts   Options
	pos    int64
	ops    int
	mem    *budget
}

// machine is one pickle's stack, marks and memo.
type machine struct {
	mem   *budget
	stack []any
	// high is the stack's high-water mark, the slots already charged.
	high  int
	marks []int
	memo  map[int64]any
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func (d *decoder) byte1() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, d.eof(err)
	}
	d.pos++
	return b, nil
}

func (d *decoder) eof(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if d.lim.N <= 0 {
			return fmt.Errorf("%w: stream exceeds the %d-byte limit", ErrCorrupt, d.limit)
		}
		return corrupt("truncated at byte %d", d.pos)
	}
	return fmt.Errorf("%w: read: %w", ErrCorrupt, err)
}

// read returns the next n bytes, growing the buffer only as data arrives so a
// forged length cannot force a huge allocation.
func (d *decoder) read(n int64) ([]byte, error) {
	if n < 0 || n > math.MaxInt32 {
		return nil, corrupt("length %d at byte %d", n, d.pos)
	}
	if !d.mem.charge(n) {
		return nil, d.mem.exceeded("a %d-byte value at byte %d", n, d.pos)
	}
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for int64(len(buf)) < n {
		if err := d.ctx.Err(); err != nil {
			return nil, err
		}
		k := min(n-int64(len(buf)), chunk)
		start := len(buf)
		buf = append(buf, make([]byte, k)...)
		if _, err := io.ReadFull(d.r, buf[start:]); err != nil {
			return nil, d.eof(err)
		}
	}
	d.pos += n
	return buf, nil
}

// chargeStr charges a string of n bytes.
func (d *decoder) chargeStr(n int) error {
	if !d.mem.charge(int64(n) + costSlot) {
		return d.mem.exceeded("a %d-byte string at byte %d", n, d.pos)
	}
	return nil
}

// chargeObj charges a new container or object.
func (d *decoder) chargeObj() error {
	if !d.mem.charge(costObj) {
		return d.mem.exceeded("a new object at byte %d", d.pos)
	}
	return nil
}

func (d *decoder) line() (string, error) {
	var sb strings.Builder
	for {
		b, err := d.byte1()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			return sb.String(), nil
		}
		if sb.Len() > 1<<16 {
			return "", corrupt("line too long at byte %d", d.pos)
		}
		sb.WriteByte(b)
	}
}

// uint reads an n-byte (n <= 8) little-endian integer.
func (d *decoder) uint(n int) (uint64, error) {
	var buf [8]byte
	b := buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return 0, d.eof(err)
	}
	d.pos += int64(n)
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (m *machine) push(v any) error {
	if len(m.stack) >= maxStack {
		return corrupt("stack too deep")
	}
	if len(m.stack) == m.high {
		if !m.mem.charge(costSlot) {
			return m.mem.exceeded("the stack (%d values)", m.high+1)
		}
		m.high++
	}
	m.stack = append(m.stack, v)
	return nil
}

func (m *machine) pop() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) <= m.marks[len(m.marks)-1]) {
		return nil, corrupt("stack underflow")
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) == 0 {
		return nil, corrupt("stack underflow")
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark returns a copy of the items pushed since the last MARK and
// removes them and the mark.
func (m *machine) popMark() ([]any, error) {
	items, err := m.popMarkView()
	if err != nil {
		return nil, err
	}
	if !m.mem.charge(costSlot * int64(len(items))) {
		return nil, m.mem.exceeded("a %d-item container", len(items))
	}
	return append([]any(nil), items...), nil
}

// popMarkView is popMark without the copy: the items alias the stack and
// stay valid only until the next push.
func (m *machine) popMarkView() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, corrupt("no mark on the stack")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := m.stack[k:]
	m.stack = m.stack[:k]
	return items, nil
}

// extend appends items to a list or set's elements. It charges every
// reallocation in full, since growing a slice allocates a new array each
// time (about five times the final size in all, for a long list).
func (m *machine) extend(dst []any, items []any) ([]any, error) {
	if len(dst)+len(items) > cap(dst) {
		grown := max(cap(dst)+cap(dst)/4, len(dst)+len(items))
		if !m.mem.charge(costSlot * int64(grown)) {
			return nil, m.mem.exceeded("a container of %d items", len(dst)+len(items))
		}
		dst = append(make([]any, 0, grown), dst...)
	}
	return append(dst, items...), nil
}

func (d *decoder) run(depth int) (any, error) {
	if depth > maxDepth {
		return nil, corrupt("pickles nested too deeply")
	}
	m := &machine{mem: d.mem, memo: map[int64]any{}}
	for {
		if d.ops++; d.ops%checkEvery == 0 {
			if err := d.ctx.Err(); err != nil {
				return nil, err
			}
		}
		op, err := d.byte1()
		if err != nil {
			return nil, err
		}
		if op == '.' { // STOP
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
		if err := d.step(m, op, depth); err != nil {
			return nil, err
		}
	}
}

func (d *decoder) step(m *machine, op byte, depth int) error {
	switch op {
	case 0x80: // PROTO
		p, err := d.byte1()
		if err != nil {
			return err
		}
		if p > 5 {
			return fmt.Errorf("%w: pickle protocol %d", ErrUnsupported, p)
		}
		return nil
	case 0x95: // FRAME
		_, err := d.uint(8)
		return err
	case '(': // MARK
		if len(m.marks) >= maxMarks {
			return m.mem.exceeded("more than %d open MARKs at byte %d; picklers open one per nesting level", maxMarks, d.pos)
		}
		if !m.mem.charge(costMark) {
			return m.mem.exceeded("%d open MARKs", len(m.marks)+1)
		}
		m.marks = append(m.marks, len(m.stack))
		return nil
	case '0': // POP
		if len(m.marks) > 0 && m.marks[len(m.marks)-1] == len(m.stack) {
			m.marks = m.marks[:len(m.marks)-1]
			return nil
		}
		_, err := m.pop()
		return err
	case '1': // POP_MARK
		_, err := m.popMark()
		return err
	case '2': // DUP
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.push(v)
	case 'N':
		return m.push(nil)
	case 0x88:
		return m.push(true)
	case 0x89:
		return m.push(false)
	case 'I': // INT
		s, err := d.line()
		if err != nil {
			return err
		}
		switch s {
		case "01":
			return m.push(true)
		case "00":
			return m.push(false)
		}
		return d.pushIntText(m, s)
	case 'L': // LONG
		s, err := d.line()
		if err != nil {
			return err
		}
		return d.pushIntText(m, strings.TrimSuffix(s, "L"))
	case 'J': // BININT
		v, err := d.uint(4)
		if err != nil {
			return err
		}
		return m.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := d.uint(1)
		if err != nil {
			return err
		}
		return m.push(int64(v))
	case 'M': // BININT2
		v, err := d.uint(2)
		if err != nil {
			return err
		}
		return m.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		size := 1
		if op == 0x8b {
			size = 4
		}
		n, err := d.uint(size)
		if err != nil {
			return err
		}
		if n > 1<<16 {
			return corrupt("integer of %d bytes", n)
		}
		b, err := d.read(int64(n))
		if err != nil {
			return err
		}
		return m.push(decodeLong(b))
	case 'F': // FLOAT
		s, err := d.line()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return corrupt("float %q", s)
		}
		return m.push(f)
	case 'G': // BINFLOAT
		b, err := d.read(8)
		if err != nil {
			return err
		}
		return m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'S': // STRING
		s, err := d.line()
		if err != nil {
			return err
		}
		u, err := strconv.Unquote(s)
		if err != nil {
			if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
				u = s[1 : len(s)-1]
			} else {
				return corrupt("string literal %q", s)
			}
		}
		if err := d.chargeStr(len(u)); err != nil {
			return err
		}
		return m.push(u)
	case 'V': // UNICODE (raw-unicode-escape)
		s, err := d.line()
		if err != nil {
			return err
		}
		if err := d.chargeStr(len(s)); err != nil {
			return err
		}
		return m.push(s)
	case 'T', 'X', 0x8d, 'B', 0x8e, 0x96: // 4- and 8-byte length strings
		size := 4
		if op == 0x8d || op == 0x8e || op == 0x96 {
			size = 8
		}
		n, err := d.uint(size)
		if err != nil {
			return err
		}
		if n > math.MaxInt32 {
			return corrupt("length %d", n)
		}
		b, err := d.read(int64(n))
		if err != nil {
			return err
		}
		if op == 'B' || op == 0x8e || op == 0x96 {
			return m.push(Bytes(b))
		}
		if err := d.chargeStr(len(b)); err != nil { // string(b) copies
			return err
		}
		return m.push(string(b))
	case 'U', 0x8c, 'C': // 1-byte length strings
		n, err := d.uint(1)
		if err != nil {
			return err
		}
		b, err := d.read(int64(n))
		if err != nil {
			return err
		}
		if op == 'C' {
			return m.push(Bytes(b))
		}
		if err := d.chargeStr(len(b)); err != nil {
			return err
		}
		return m.push(string(b))
	case 0x97, 0x98:
		return fmt.Errorf("%w: out-of-band buffers", ErrUnsupported)
	case ']':
		if err := d.chargeObj(); err != nil {
			return err
		}
		return m.push(&List{})
	case 'l': // LIST
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&List{Items: items})
	case 'a', 'e': // APPEND, APPENDS
		var items []any
		if op == 'a' {
			v, err := m.pop()
			if err != nil {
				return err
			}
			items = []any{v}
		} else {
			var err error
			if items, err = m.popMarkView(); err != nil {
				return err
			}
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		switch l := t.(type) {
		case *List:
			l.Items, err = m.extend(l.Items, items)
		case *Set:
			l.Items, err = m.extend(l.Items, items)
		default:
			return corrupt("APPEND to %s", Describe(t))
		}
		return err
	case ')':
		return m.push(Tuple{})
	case 't':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(Tuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op - 0x84)
		if len(m.stack) < n {
			return corrupt("stack underflow")
		}
		if !m.mem.charge(costSlot * int64(n)) {
			return m.mem.exceeded("a %d-tuple at byte %d", n, d.pos)
		}
		t := make(Tuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := m.pop()
			if err != nil {
				return err
			}
			t[i] = v
		}
		return m.push(t)
	case '}':
		if err := d.chargeObj(); err != nil {
			return err
		}
		return m.push(&Dict{})
	case 'd': // DICT
		items, err := m.popMarkView()
		if err != nil {
			return err
		}
		dict := &Dict{}
		if err := m.setItems(dict, items); err != nil {
			return err
		}
		return m.push(dict)
	case 's', 'u': // SETITEM, SETITEMS
		var items []any
		if op == 's' {
			v, err := m.pop()
			if err != nil {
				return err
			}
			k, err := m.pop()
			if err != nil {
				return err
			}
			items = []any{k, v}
		} else {
			var err error
			if items, err = m.popMarkView(); err != nil {
				return err
			}
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		dict, ok := t.(*Dict)
		if !ok {
			return corrupt("SETITEM on %s", Describe(t))
		}
		return m.setItems(dict, items)
	case 0x8f: // EMPTY_SET
		if err := d.chargeObj(); err != nil {
			return err
		}
		return m.push(&Set{})
	case 0x90: // ADDITEMS
		items, err := m.popMarkView()
		if err != nil {
			return err
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		s, ok := t.(*Set)
		if !ok {
			return corrupt("ADDITEMS on %s", Describe(t))
		}
		s.Items, err = m.extend(s.Items, items)
		return err
	case 0x91: // FROZENSET
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&Set{Items: items})
	case 'c': // GLOBAL
		mod, err := d.line()
		if err != nil {
			return err
		}
		name, err := d.line()
		if err != nil {
			return err
		}
		g, err := d.global(mod, name)
		if err != nil {
			return err
		}
		return m.push(g)
	case 0x93: // STACK_GLOBAL
		nv, err := m.pop()
		if err != nil {
			return err
		}
		mv, err := m.pop()
		if err != nil {
			return err
		}
		mod, ok1 := mv.(string)
		name, ok2 := nv.(string)
		if !ok1 || !ok2 {
			return corrupt("STACK_GLOBAL operands are %s and %s", Describe(mv), Describe(nv))
		}
		g, err := d.global(mod, name)
		if err != nil {
			return err
		}
		return m.push(g)
	case 'R': // REDUCE
		args, err := m.pop()
		if err != nil {
			return err
		}
		fn, err := m.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return corrupt("REDUCE arguments are %s", Describe(args))
		}
		if err := d.chargeObj(); err != nil {
			return err
		}
		v, err := d.reduce(fn, t)
		if err != nil {
			return err
		}
		return m.push(v)
	case 0x81, 0x92: // NEWOBJ, NEWOBJ_EX
		if op == 0x92 {
			if _, err := m.pop(); err != nil { // kwargs
				return err
			}
		}
		args, err := m.pop()
		if err != nil {
			return err
		}
		cls, err := m.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return corrupt("NEWOBJ arguments are %s", Describe(args))
		}
		if err := d.chargeObj(); err != nil {
			return err
		}
		v, err := d.newObject(cls, t)
		if err != nil {
			return err
		}
		return m.push(v)
	case 'i': // INST
		mod, err := d.line()
		if err != nil {
			return err
		}
		name, err := d.line()
		if err != nil {
			return err
		}
		g, err := d.global(mod, name)
		if err != nil {
			return err
		}
		items, err := m.popMark()
		if err != nil {
			return err
		}
		v, err := d.newObject(g, items)
		if err != nil {
			return err
		}
		return m.push(v)
	case 'o': // OBJ
		items, err := m.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return corrupt("OBJ without a class")
		}
		v, err := d.newObject(items[0], items[1:])
		if err != nil {
			return err
		}
		return m.push(v)
	case 'b': // BUILD
		state, err := m.pop()
		if err != nil {
			return err
		}
		obj, err := m.top()
		if err != nil {
			return err
		}
		v, err := d.build(obj, state, depth)
		if err != nil {
			return err
		}
		m.stack[len(m.stack)-1] = v
		return nil
	case 'p': // PUT
		s, err := d.line()
		if err != nil {
			return err
		}
		k, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return corrupt("memo key %q", s)
		}
		return m.put(k)
	case 'q', 'r': // BINPUT, LONG_BINPUT
		size := 1
		if op == 'r' {
			size = 4
		}
		k, err := d.uint(size)
		if err != nil {
			return err
		}
		return m.put(int64(k))
	case 0x94: // MEMOIZE
		return m.put(int64(len(m.memo)))
	case 'g': // GET
		s, err := d.line()
		if err != nil {
			return err
		}
		k, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return corrupt("memo key %q", s)
		}
		return m.get(k)
	case 'h', 'j': // BINGET, LONG_BINGET
		size := 1
		if op == 'j' {
			size = 4
		}
		k, err := d.uint(size)
		if err != nil {
			return err
		}
		return m.get(int64(k))
	case 'P', 'Q':
		return fmt.Errorf("%w: persistent ids", ErrUnsupported)
	case 0x82, 0x83, 0x84:
		return fmt.Errorf("%w: extension registry codes", ErrUnsupported)
	}
	return corrupt("unknown opcode 0x%02x at byte %d", op, d.pos-1)
}

func (m *machine) put(k int64) error {
	v, err := m.top()
	if err != nil {
		return err
	}
	if _, ok := m.memo[k]; !ok && !m.mem.charge(costMemo) {
		return m.mem.exceeded("the memo (%d entries)", len(m.memo)+1)
	}
	m.memo[k] = v
	return nil
}

func (m *machine) get(k int64) error {
	v, ok := m.memo[k]
	if !ok {
		return corrupt("memo key %d not set", k)
	}
	return m.push(v)
}

func (m *machine) setItems(d *Dict, items []any) error {
	if len(items)%2 != 0 {
		return corrupt("odd number of dict items")
	}
	if !m.mem.charge(costSlot * int64(len(items))) {
		return m.mem.exceeded("a dict of %d items", len(d.Keys)+len(items)/2)
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

func (d *decoder) pushIntText(m *machine, s string) error {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return m.push(v)
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return corrupt("integer %q", s)
	}
	return m.push(b)
}

// decodeLong reads a little-endian two's-complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

func (d *decoder) global(mod, name string) (Global, error) {
	if err := d.chargeStr(len(mod) + len(name)); err != nil {
		return Global{}, err
	}
	g := Global{Module: mod, Name: name}
	if builtinGlobals[g] || (d.opts.Allow != nil && d.opts.Allow(g)) {
		return g, nil
	}
	return Global{}, &ForbiddenError{Global: g}
}

// ForbiddenError names a global the allow-list refused. It matches
// ErrForbidden with errors.Is.
type ForbiddenError struct{ Global Global }

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("forbidden global: refusing to load %s: it is not on the allow-list, and loading it could run code", e.Global)
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }
