package cli

import (
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
	"github.com/ferryserve/ferry/internal/runtime/pmml"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
)

// Formats lists the runtimes `ferry serve` knows, in detection order.
func Formats() []runtime.Format { return formatsWith(onnx.Options{}) }

func formatsWith(o onnx.Options) []runtime.Format {
	return []runtime.Format{xgboost.Format, lightgbm.Format, sklearn.Format, pmml.Format, onnx.FormatWith(o)}
}

func joinNames() string {
	return strings.Join(runtime.NewRegistry(Formats()...).Names(), ", ")
}
