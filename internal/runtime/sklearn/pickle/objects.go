package pickle

import (
	"fmt"
)

func isGlobal(v any, mod ...string) (Global, bool) {
	g, ok := v.(Global)
	if !ok {
		return g, false
	}
	if len(mod) == 0 {
		return g, true
	}
	for i := 0; i+1 < len(mod); i += 2 {
		if g.Module == mod[i] && g.Name == mod[i+1] {
			return g, true
		}
	}
	return g, false
}

// reduce applies a global to arguments without calling anything: the
// built-in globals produce the data they stand for, allow-listed classes
// an *Object.
func (d *decoder) reduce(fn any, args Tuple) (any, error) {
	g, ok := fn.(Global)
	if !ok {
		return nil, corrupt("REDUCE on %s", Describe(fn))
	}
	switch {
	case g.Name == "_reconstruct" && (g.Module == "numpy.core.multiarray" || g.Module == "numpy._core.multiarray"):
		if len(args) < 1 {
			return nil, corrupt("_reconstruct without arguments")
		}
		if _, ok := isGlobal(args[0], "numpy", "ndarray"); !ok {
			return nil, fmt.Errorf("%w: ndarray subclass %s", ErrUnsupported, Describe(args[0]))
		}
		return &Array{}, nil
	case g == Global{"numpy", "dtype"}:
		if len(args) < 1 {
			return nil, corrupt("numpy.dtype without arguments")
		}
		spec, ok := args[0].(string)
		if !ok {
			return nil, corrupt("numpy.dtype(%s)", Describe(args[0]))
		}
		return newDtype(spec)
	case g.Name == "scalar" && (g.Module == "numpy.core.multiarray" || g.Module == "numpy._core.multiarray"):
		if len(args) < 1 {
			return nil, corrupt("numpy scalar without arguments")
		}
		dt, ok := args[0].(*Dtype)
		if !ok {
			return nil, corrupt("numpy scalar of %s", Describe(args[0]))
		}
		if dt.Kind == 'O' {
			if len(args) < 2 {
				return nil, corrupt("numpy object scalar without a value")
			}
			return args[1], nil
		}
		if len(args) < 2 {
			return nil, corrupt("numpy scalar without data")
		}
		b, err := bytesOf(args[1])
		if err != nil {
			return nil, err
		}
		a := &Array{Dtype: &Dtype{Kind: dt.Kind, Size: dt.Size, BigEndian: dt.BigEndian}}
		if err := a.fill(d.mem, b, false); err != nil {
			return nil, err
		}
		return scalarAt(a.Dtype, a.Data)
	case g.Name == "_frombuffer" && (g.Module == "numpy.core.numeric" || g.Module == "numpy._core.numeric"):
		if len(args) < 4 {
			return nil, corrupt("_frombuffer with %d arguments", len(args))
		}
		b, err := bytesOf(args[0])
		if err != nil {
			return nil, err
		}
		dt, ok := args[1].(*Dtype)
		if !ok {
			return nil, corrupt("_frombuffer dtype is %s", Describe(args[1]))
		}
		shape, err := toShape(args[2])
		if err != nil {
			return nil, err
		}
		order, _ := args[3].(string)
		a := &Array{Dtype: copyDtype(dt), Shape: shape}
		if err := a.fill(d.mem, b, order == "F"); err != nil {
			return nil, err
		}
		return a, nil
	case g.Name == "_reconstructor" && (g.Module == "copyreg" || g.Module == "copy_reg"):
		if len(args) < 2 {
			return nil, corrupt("_reconstructor with %d arguments", len(args))
		}
		cls, ok := isGlobal(args[0])
		if !ok {
			return nil, corrupt("_reconstructor class is %s", Describe(args[0]))
		}
		if _, ok := isGlobal(args[1], "builtins", "object", "__builtin__", "object"); !ok {
			return nil, fmt.Errorf("%w: _reconstructor with base %s", ErrUnsupported, Describe(args[1]))
		}
		return d.newObject(cls, nil)
	case g == Global{"_codecs", "encode"}:
		if len(args) < 1 {
			return nil, corrupt("_codecs.encode without arguments")
		}
		s, ok := args[0].(string)
		if !ok {
			return nil, corrupt("_codecs.encode(%s)", Describe(args[0]))
		}
		if len(args) > 1 {
			if enc, _ := args[1].(string); enc != "latin1" && enc != "latin-1" {
				return nil, fmt.Errorf("%w: _codecs.encode to %v", ErrUnsupported, args[1])
			}
		}
		if !d.mem.charge(int64(len(s))) {
			return nil, d.mem.exceeded("_codecs.encode of a %d-byte string", len(s))
		}
		out := make(Bytes, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, corrupt("latin1 text holds U+%04X", r)
			}
			out = append(out, byte(r))
		}
		return out, nil
	case g.Name == "bytearray" && g.Module == "builtins":
		if len(args) == 0 {
			return Bytes{}, nil
		}
		return bytesOf(args[0])
	case g.Name == "slice" && g.Module == "builtins":
		return args, nil
	}
	return d.newObject(g, args)
}

// newObject makes an instance of an allowed class: builtin containers
// become data, everything else an inert *Object.
func (d *decoder) newObject(cls any, args Tuple) (any, error) {
	g, ok := cls.(Global)
	if !ok {
		return nil, corrupt("instantiating %s", Describe(cls))
	}
	switch g {
	case Global{"collections", "OrderedDict"}:
		out := &Dict{}
		if len(args) > 0 {
			if err := fillPairs(out, args[0]); err != nil {
				return nil, err
			}
		}
		return out, nil
	case Global{"builtins", "set"}, Global{"builtins", "frozenset"}, Global{"__builtin__", "set"}, Global{"__builtin__", "frozenset"}:
		s := &Set{}
		if len(args) > 0 {
			items, err := sequence(args[0])
			if err != nil {
				return nil, err
			}
			s.Items = items
		}
		return s, nil
	case Global{"numpy", "ndarray"}, Global{"numpy", "dtype"}:
		return nil, fmt.Errorf("%w: direct construction of %s", ErrUnsupported, g)
	}
	if builtinGlobals[g] && g != (Global{"joblib.numpy_pickle", "NumpyArrayWrapper"}) && g.Name != "object" {
		return nil, corrupt("%s used as a class", g)
	}
	return &Object{Class: g, Args: args}, nil
}

func (d *decoder) build(obj, state any, depth int) (any, error) {
	switch o := obj.(type) {
	case *Array:
		if o.Dtype != nil {
			return nil, corrupt("BUILD on a finished array")
		}
		return o, setArrayState(d.mem, o, state)
	case *Dtype:
		return o, o.setState(state)
	case *Dict:
		if sd, ok := state.(*Dict); ok {
			if !d.mem.charge(2 * costSlot * int64(len(sd.Keys))) {
				return nil, d.mem.exceeded("a dict of %d items", len(o.Keys)+len(sd.Keys))
			}
			o.Keys = append(o.Keys, sd.Keys...)
			o.Values = append(o.Values, sd.Values...)
			return o, nil
		}
		return nil, corrupt("BUILD on dict with %s", Describe(state))
	case *Object:
		o.State = state
		if d.joblib && o.Class == (Global{"joblib.numpy_pickle", "NumpyArrayWrapper"}) {
			return d.readWrapped(o, depth)
		}
		return o, nil
	}
	return nil, corrupt("BUILD on %s", Describe(obj))
}

// setArrayState applies ndarray.__setstate__: (version, shape, dtype,
// is_fortran, data), where data is raw bytes or, for object arrays, a list.
func setArrayState(mem *budget, a *Array, state any) error {
	t, ok := state.(Tuple)
	if !ok || (len(t) != 5 && len(t) != 4) {
		return corrupt("ndarray state is %s", Describe(state))
	}
	if len(t) == 5 {
		t = t[1:]
	}
	shape, err := toShape(t[0])
	if err != nil {
		return err
	}
	dt, ok := t[1].(*Dtype)
	if !ok {
		return corrupt("ndarray dtype is %s", Describe(t[1]))
	}
	fortran, _ := t[2].(bool)
	if fi, ok := t[2].(int64); ok {
		fortran = fi != 0
	}
	a.Dtype, a.Shape = copyDtype(dt), shape
	if dt.Kind == 'O' {
		items, err := sequence(t[3])
		if err != nil {
			return err
		}
		return a.fillObjects(mem, items, fortran)
	}
	b, err := bytesOf(t[3])
	if err != nil {
		return err
	}
	return a.fill(mem, b, fortran)
}

// readWrapped replaces a joblib NumpyArrayWrapper by the array whose bytes
// follow it in the stream (joblib/numpy_pickle.py, NumpyArrayWrapper.read_array).
func (d *decoder) readWrapped(o *Object, depth int) (any, error) {
	st, ok := o.State.(*Dict)
	if !ok {
		return nil, corrupt("NumpyArrayWrapper state is %s", Describe(o.State))
	}
	sv, _ := st.Get("shape")
	shape, err := toShape(sv)
	if err != nil {
		return nil, err
	}
	dv, _ := st.Get("dtype")
	dt, ok := dv.(*Dtype)
	if !ok {
		return nil, corrupt("NumpyArrayWrapper dtype is %s", Describe(dv))
	}
	order, _ := st.Get("order")
	n, err := count(shape)
	if err != nil {
		return nil, err
	}
	if dt.Kind == 'O' {
		v, err := d.run(depth + 1)
		if err != nil {
			return nil, err
		}
		a, ok := v.(*Array)
		if !ok {
			return nil, corrupt("joblib object array holds %s", Describe(v))
		}
		return a, nil
	}
	if al, ok := st.Get("numpy_array_alignment_bytes"); ok && al != nil {
		pad, err := d.byte1()
		if err != nil {
			return nil, err
		}
		if _, err := d.read(int64(pad)); err != nil {
			return nil, err
		}
	}
	if dt.Size > 0 && n > (1<<31)/dt.Size {
		return nil, corrupt("joblib array %v of %s too large", shape, dt)
	}
	raw, err := d.read(int64(n * dt.Size))
	if err != nil {
		return nil, err
	}
	a := &Array{Dtype: copyDtype(dt), Shape: shape}
	return a, a.fill(d.mem, raw, order == "F")
}

func copyDtype(d *Dtype) *Dtype {
	c := *d
	return &c
}

func bytesOf(v any) ([]byte, error) {
	switch b := v.(type) {
	case Bytes:
		return b, nil
	case string: // protocol 0–2 str data from Python 2
		return []byte(b), nil
	}
	return nil, corrupt("want bytes, got %s", Describe(v))
}

func sequence(v any) ([]any, error) {
	switch s := v.(type) {
	case *List:
		return s.Items, nil
	case Tuple:
		return s, nil
	case *Set:
		return s.Items, nil
	}
	return nil, corrupt("want a sequence, got %s", Describe(v))
}

func fillPairs(d *Dict, v any) error {
	items, err := sequence(v)
	if err != nil {
		return err
	}
	for _, it := range items {
		p, err := sequence(it)
		if err != nil || len(p) != 2 {
			return corrupt("OrderedDict item is %s", Describe(it))
		}
		d.set(p[0], p[1])
	}
	return nil
}
