package cli

import (
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
)

// Formats lists the runtimes `ferry serve` knows, in detection order.
func Formats() []runtime.Format {
	return []runtime.Format{lightgbm.Format}
}

func joinNames() string {
	return strings.Join(runtime.NewRegistry(Formats()...).Names(), ", ")
}
