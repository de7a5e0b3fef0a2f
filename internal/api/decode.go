package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// supported lists every apiVersion and kind Decode accepts.
var supported = []TypeMeta{
	{APIVersion: GroupKServe + "/" + VersionInferenceService, Kind: KindInferenceService},
	{APIVersion: GroupKubeflow + "/" + VersionInferenceService, Kind: KindInferenceService},
	{APIVersion: GroupKServe + "/" + VersionTrainedModel, Kind: KindTrainedModel},
	{APIVersion: GroupKubeflow + "/" + VersionTrainedModel, Kind: KindTrainedModel},
	{APIVersion: GroupKubeflow + "/" + VersionV1alpha2, Kind: KindInferenceService},
	// KServe never served this one, but samples in its docs still use it.
	{APIVersion: GroupKServe + "/" + VersionV1alpha2, Kind: KindInferenceService},
	{APIVersion: GroupKServe + "/" + VersionInferenceGraph, Kind: KindInferenceGraph},
}

// Supported returns the apiVersion/kind pairs Decode accepts.
func Supported() []TypeMeta { return append([]TypeMeta(nil), supported...) }

// newObject returns what a document of type t decodes into: an Object, or
// a converter to one (older versions), or nil when t is not supported.
func newObject(t TypeMeta) any {
	for _, s := range supported {
		if s != t {
			continue
		}
		switch {
		case t.Kind == KindInferenceService && t.Version() == VersionV1alpha2:
			return &InferenceServiceV1alpha2{}
		case t.Kind == KindInferenceService:
			return &InferenceService{}
		case t.Kind == KindTrainedModel:
			return &TrainedModel{}
		case t.Kind == KindInferenceGraph:
			return &InferenceGraph{}
		}
	}
	return nil
}

// converter is an older version that Decode converts to the one Ferry
// stores; prefix is the object's path inside a List, or "".
type converter interface {
	toHub(prefix string) (Object, error)
}

func (src *InferenceServiceV1alpha2) toHub(prefix string) (Object, error) {
	return src.toV1beta1(prefix, false)
}

func supportedList() string {
	parts := make([]string, len(supported))
	for i, s := range supported {
		parts[i] = s.APIVersion + " " + s.Kind
	}
	return strings.Join(parts, ", ")
}

// Decode parses one or more YAML documents separated by "---" lines (JSON is
// accepted as YAML) into InferenceService and TrainedModel objects, in input
// order. Empty documents are skipped. Decoding is strict: unknown fields,
// duplicate keys, wrong value types and unsupported kinds are errors that
// name the document, its first line and the field path; every document's
// errors are reported, joined by newlines. Decode neither defaults nor
// validates; see Load.
func Decode(data []byte) ([]Object, error) {
	return decodeAll(data, false)
}

// Load is Decode followed by Default and Validate on each object: what a
// Kubernetes API server with KServe's webhooks would store. Validation
// errors are reported like decoding errors, per document.
func Load(data []byte) ([]Object, error) {
	return decodeAll(data, true)
}

func decodeAll(data []byte, admit bool) ([]Object, error) {
	var (
		objs []Object
		errs []error
	)
	for _, doc := range splitDocuments(data) {
		docObjs, list, err := decodeDocument(doc.text)
		if err == nil && admit {
			err = admitAll(docObjs, list)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d (line %d): %w", doc.index, doc.line, err))
			continue
		}
		objs = append(objs, docObjs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// admitAll defaults and validates objs, naming the item when they came from
// a List.
func admitAll(objs []Object, list bool) error {
	var errs []error
	for i, o := range objs {
		o.Default()
		if err := o.Validate(); err != nil {
			if list {
				err = fmt.Errorf("items[%d]: %w", i, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type document struct {
	index, line int
	text        []byte
}

// splitDocuments cuts a YAML stream at lines that start with "---" followed
// by nothing but blanks or a comment, as kubectl does.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for pos := 0; pos <= len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		l := data[pos:end]
		if isSeparator(l) {
			docs = append(docs, document{index: len(docs) + 1, line: startLine, text: data[start:pos]})
			start, startLine = end+1, line+1
		}
		pos, line = end+1, line+1
	}
	if start < len(data) {
		docs = append(docs, document{index: len(docs) + 1, line: startLine, text: data[start:]})
	}
	return docs
}

func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// decodeDocument decodes one YAML document: a single object, or a
// Kubernetes "v1 List" of them as kubectl get -o yaml prints.
func decodeDocument(text []byte) (objs []Object, list bool, err error) {
	js, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m, ok := tree.(map[string]any)
	if !ok {
		return nil, false, fmt.Errorf("%w: expected an object, got %s", ErrInvalid, jsonKind(tree))
	}
	if m["apiVersion"] != "v1" || m["kind"] != "List" {
		obj, err := decodeObject("", m, js)
		if err != nil {
			return nil, false, err
		}
		return []Object{obj}, false, nil
	}
	var errs fieldErrors
	for _, k := range sortedKeys(m) {
		if k != "apiVersion" && k != "kind" && k != "metadata" && k != "items" {
			errs.add(k, "unknown field")
		}
	}
	items, ok := m["items"].([]any)
	if m["items"] != nil && !ok {
		errs.add("items", "expected a list, got %s", jsonKind(m["items"]))
	}
	if err := errs.err(); err != nil {
		return nil, true, err
	}
	objs = make([]Object, 0, len(items))
	var itemErrs []error
	for i, it := range items {
		path := fmt.Sprintf("items[%d]", i)
		im, ok := it.(map[string]any)
		if !ok {
			itemErrs = append(itemErrs, fmt.Errorf("%w: %s: expected an object, got %s", ErrInvalid, path, jsonKind(it)))
			continue
		}
		b, err := json.Marshal(im)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
		}
		obj, err := decodeObject(path, im, b)
		if err != nil {
			itemErrs = append(itemErrs, err)
			continue
		}
		objs = append(objs, obj)
	}
	if len(itemErrs) > 0 {
		return nil, true, errors.Join(itemErrs...)
	}
	return objs, true, nil
}

// decodeObject decodes one object given both as a generic tree (for the
// strict field check) and as JSON; path prefixes field paths inside a List.
func decodeObject(path string, m map[string]any, js []byte) (Object, error) {
	var tm TypeMeta
	tm.APIVersion, _ = m["apiVersion"].(string)
	tm.Kind, _ = m["kind"].(string)
	obj := newObject(tm)
	if obj == nil {
		where := ""
		if path != "" {
			where = path + ": "
		}
		return nil, fmt.Errorf("%w: %sunsupported apiVersion %q kind %q; supported: %s",
			ErrInvalid, where, tm.APIVersion, tm.Kind, supportedList())
	}
	var errs fieldErrors
	checkValue(&errs, path, m, reflect.TypeOf(obj).Elem())
	if err := errs.err(); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(js, obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch o := obj.(type) {
	case Object:
		return o, nil
	case converter:
		return o.toHub(path)
	}
	return nil, fmt.Errorf("%w: %s %s cannot be decoded", ErrInvalid, tm.APIVersion, tm.Kind)
}

var (
	intOrStringType = reflect.TypeFor[IntOrString]()
	quantityType    = reflect.TypeFor[Quantity]()
	timeType        = reflect.TypeFor[time.Time]()
)

// checkValue compares a generic JSON value against the Go type it will be
// decoded into, and records every unknown field and mismatched type with its
// path. encoding/json alone stops at the first problem, matches field names
// case-insensitively and reports unknown fields without their path.
func checkValue(errs *fieldErrors, path string, v any, t reflect.Type) {
	if v == nil {
		return // null leaves the zero value, as in Kubernetes
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case intOrStringType:
		if _, ok := v.(string); ok {
			return
		}
		if n, ok := v.(json.Number); ok {
			if _, err := strconv.ParseInt(string(n), 10, 32); err == nil {
				return
			}
		}
		errs.add(path, "expected an integer or a string, got %s", jsonKind(v))
		return
	case quantityType:
		switch v.(type) {
		case string, json.Number:
		default:
			errs.add(path, "expected a quantity, got %s", jsonKind(v))
		}
		return
	case timeType:
		s, ok := v.(string)
		if !ok {
			errs.add(path, "expected an RFC 3339 time, got %s", jsonKind(v))
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			errs.add(path, "expected an RFC 3339 time, got %q", s)
		}
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		return
	case reflect.String:
		if _, ok := v.(string); !ok {
			errs.add(path, "expected a string, got %s", jsonKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			errs.add(path, "expected a boolean, got %s", jsonKind(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			errs.add(path, "expected an integer, got %s", jsonKind(v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			if strings.ContainsAny(string(n), ".eE") {
				errs.add(path, "expected an integer, got number %s", n)
			} else {
				errs.add(path, "expected a %d-bit integer, got %s", t.Bits(), n)
			}
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			errs.add(path, "expected a number, got %s", jsonKind(v))
			return
		}
		if f, err := strconv.ParseFloat(string(n), 64); err != nil || math.IsInf(f, 0) {
			errs.add(path, "expected a number, got %s", n)
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			errs.add(path, "expected a list, got %s", jsonKind(v))
			return
		}
		for i, e := range a {
			checkValue(errs, fmt.Sprintf("%s[%d]", path, i), e, t.Elem())
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			errs.add(path, "expected an object, got %s", jsonKind(v))
			return
		}
		for _, k := range sortedKeys(m) {
			checkValue(errs, joinPath(path, k), m[k], t.Elem())
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			errs.add(path, "expected an object, got %s", jsonKind(v))
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				errs.add(joinPath(path, k), "unknown field")
				continue
			}
			checkValue(errs, joinPath(path, k), m[k], ft)
		}
	default:
		errs.add(path, "cannot decode into %s", t)
	}
}

// jsonFields maps JSON names to field types, flattening embedded structs the
// way encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return "boolean"
	case json.Number:
		return "number " + string(v)
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
