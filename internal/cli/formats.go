package cli

import (
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
)

// Formats lists the runtimes `ferry serve` knows, in detection order.
func Formats() []runtime.Format {
	return []runtime.Format{}
}

func joinNames() string {
	return strings.Join(runtime.NewRegistry(Formats()...).Names(), ", ")
}
