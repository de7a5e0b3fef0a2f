package cli

import (
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
)

// Formats lists the runtimes `ferry serve` knows, in detection order.
func Formats() []runtime.Format { return formatsWith(onnx.Options{}) }

func formatsWith(o onnx.Options) []runtime.Format {
	return builtin.Formats(o)
}

func joinNames() string {
	return strings.Join(runtime.NewRegistry(Formats()...).Names(), ", ")
}
