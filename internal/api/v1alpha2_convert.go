package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// AnnotationV1beta1Spec holds, on the v1alpha2 view of an InferenceService,
// the JSON of its v1beta1 spec when the view cannot express all of it
// (protocolVersion, container overrides, pod fields, the generic model
// form, ...). ConvertToV1beta1 takes from it what the view does not show,
// so that an object read and written back at v1alpha2 loses nothing.
const AnnotationV1beta1Spec = "ferryserve.github.io/v1beta1-spec"

// AnnotationV1beta1Status holds, on the v1alpha2 view, the JSON of the
// v1beta1 status, which the v1alpha2 status reshapes and cannot give back
// (per-component traffic, revisions): the API server converts a stored
// object to the version of a request before an update and copies its
// status into the new object, so the status would otherwise be lost by
// every update at v1alpha2.
const AnnotationV1beta1Status = "ferryserve.github.io/v1beta1-status"

// ConvertToV1alpha2 converts the InferenceService to v1alpha2 for a
// conversion webhook: it never fails on a spec v1alpha2 cannot express
// (ToV1alpha2 does), showing what it can, and keeps the whole v1beta1 spec
// in AnnotationV1beta1Spec whenever converting the view back would not give
// it exactly. Metadata other than labels and annotations is the caller's
// to keep: only those two may change in a conversion.
func (s *InferenceService) ConvertToV1alpha2() (*InferenceServiceV1alpha2, error) {
	out, err := s.toV1alpha2(true)
	if err != nil {
		return nil, err
	}
	annotate := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%w: encoding %s: %w", ErrInvalid, key, err)
		}
		if out.Metadata.Annotations == nil {
			out.Metadata.Annotations = make(map[string]string, 2)
		}
		out.Metadata.Annotations[key] = string(b)
		return nil
	}
	if s.Status != nil {
		if err := annotate(AnnotationV1beta1Status, s.Status); err != nil {
			return nil, err
		}
	}
	// An error reading the view back (several implementations, which
	// toV1alpha2 does not make) keeps the spec too.
	if back, err := out.toV1beta1("", true); err == nil && sameJSON(back.Spec, s.Spec) {
		return out, nil
	}
	if err := annotate(AnnotationV1beta1Spec, &s.Spec); err != nil {
		return nil, err
	}
	return out, nil
}

// statusFromV1alpha2 converts the status as a conversion webhook must when
// the v1beta1 status did not come with it (AnnotationV1beta1Status): the
// fields both versions share. The operator rewrites the rest.
func statusFromV1alpha2(st *InferenceServiceStatusV1alpha2) *InferenceServiceStatus {
	if st == nil {
		return nil
	}
	return &InferenceServiceStatus{
		ObservedGeneration: st.ObservedGeneration,
		Conditions:         slices.Clone(st.Conditions),
		URL:                st.URL,
		Address:            st.Address,
	}
}

// restoreStatus is the status src converts to: the saved v1beta1 status
// when src's v1alpha2 status is still the view of it, else what the
// v1alpha2 status says.
func (src *InferenceServiceV1alpha2) restoreStatus() (*InferenceServiceStatus, error) {
	saved, ok := src.Metadata.Annotations[AnnotationV1beta1Status]
	if !ok {
		return statusFromV1alpha2(src.Status), nil
	}
	var st InferenceServiceStatus
	if err := json.Unmarshal([]byte(saved), &st); err != nil {
		return nil, fmt.Errorf("%w: metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1beta1Status, err)
	}
	// The view was made with or without a canary endpoint; the client may
	// have added or removed one since.
	if src.Status == nil || sameJSON(statusToV1alpha2(&st, true), src.Status) || sameJSON(statusToV1alpha2(&st, false), src.Status) {
		return &st, nil
	}
	return statusFromV1alpha2(src.Status), nil
}

// ConvertToV1beta1 converts a v1alpha2 InferenceService to v1beta1 for a
// conversion webhook. Unlike Decode it leaves canaryTrafficPercent to
// Validate, and when the object carries AnnotationV1beta1Spec (it was read
// at v1alpha2 by ConvertToV1alpha2) the result is that spec with the
// changes made to the view since: a field the view shows and the client
// changed takes the client's value, everything else the saved one. A
// component whose implementation changed (sklearn to xgboost) takes only
// what the view says. Like toV1beta1 it fails on a component with more than
// one implementation, which no conversion can choose between.
func (src *InferenceServiceV1alpha2) ConvertToV1beta1() (*InferenceService, error) {
	fresh, err := src.toV1beta1("", true)
	if err != nil {
		return nil, err
	}
	if fresh.Status, err = src.restoreStatus(); err != nil {
		return nil, err
	}
	saved, ok := src.Metadata.Annotations[AnnotationV1beta1Spec]
	if !ok {
		return fresh, nil
	}
	var spec InferenceServiceSpec
	if err := json.Unmarshal([]byte(saved), &spec); err != nil {
		return nil, fmt.Errorf("%w: metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1beta1Spec, err)
	}
	// base is what the view showed for the saved spec, read back the same
	// way: where fresh still equals it the client changed nothing.
	prev := &InferenceService{TypeMeta: fresh.TypeMeta, Metadata: fresh.Metadata, Spec: spec}
	view, err := prev.toV1alpha2(true)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1beta1Spec, err)
	}
	base, err := view.toV1beta1("", true)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1beta1Spec, err)
	}
	merged, err := merge3JSON(spec, base.Spec, fresh.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: merging metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1beta1Spec, err)
	}
	fresh.Spec = InferenceServiceSpec{}
	if err := json.Unmarshal(merged, &fresh.Spec); err != nil {
		return nil, fmt.Errorf("%w: merging metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1beta1Spec, err)
	}
	return fresh, nil
}

// sameJSON reports whether a and b encode to the same JSON.
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// merge3JSON merges the JSON forms of saved, base and fresh (see merge3).
func merge3JSON(saved, base, fresh any) ([]byte, error) {
	var trees [3]any
	for i, v := range []any{saved, base, fresh} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&trees[i]); err != nil {
			return nil, err
		}
	}
	return json.Marshal(merge3(trees[0], trees[1], trees[2]))
}

// absent stands for a key an object lacks in merge3.
type absentValue struct{}

var absent = absentValue{}

// merge3 is a three-way merge of JSON trees: where fresh equals base
// (nothing changed since base was derived from saved) saved's value is
// kept; where all three are objects they are merged key by key; anywhere
// else fresh's value wins. Lists are values: a changed list is taken whole.
func merge3(saved, base, fresh any) any {
	if reflect.DeepEqual(base, fresh) {
		return saved
	}
	s, sok := saved.(map[string]any)
	b, bok := base.(map[string]any)
	f, fok := fresh.(map[string]any)
	if !sok || !bok || !fok {
		return fresh
	}
	out := make(map[string]any, len(s)+len(f))
	keys := make(map[string]bool, len(s)+len(f))
	for _, m := range []map[string]any{s, b, f} {
		for k := range m {
			keys[k] = true
		}
	}
	get := func(m map[string]any, k string) any {
		if v, ok := m[k]; ok {
			return v
		}
		return absent
	}
	for k := range keys {
		if v := merge3(get(s, k), get(b, k), get(f, k)); v != any(absent) {
			out[k] = v
		}
	}
	return out
}
