// Package builtin is the list of runtimes `ferry serve` evaluates itself,
// in detection order. The CLI builds its registry from it; the control
// plane and the operator ask it which predictor formats need no image of
// their own, so the list exists once.
package builtin

import (
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
	"github.com/ferryserve/ferry/internal/runtime/pmml"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
)

// Formats lists the built-in runtimes, ONNX configured by o.
func Formats(o onnx.Options) []runtime.Format {
	return []runtime.Format{xgboost.Format, lightgbm.Format, sklearn.Format, pmml.Format, onnx.FormatWith(o)}
}

// Names lists the built-in formats' names.
func Names() []string { return runtime.NewRegistry(Formats(onnx.Options{})...).Names() }

// Has reports whether format is built in.
func Has(format string) bool {
	_, ok := runtime.NewRegistry(Formats(onnx.Options{})...).Lookup(format)
	return ok
}
