package api

import (
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem found at a field path such as
// "spec.predictor.xgboost.storageUri".
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) String() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ValidationError lists every problem found in one object, sorted by path
// and message. It wraps ErrInvalid.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// fieldErrors collects problems while walking an object.
type fieldErrors []FieldError

func (f *fieldErrors) add(path, format string, args ...any) {
	*f = append(*f, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns the collected problems sorted and without duplicates, or nil.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	errs := slices.Clone(f)
	slices.SortFunc(errs, func(a, b FieldError) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return &ValidationError{Errors: slices.Compact(errs)}
}
