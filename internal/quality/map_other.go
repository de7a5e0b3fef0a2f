//go:build !linux

package quality

import (
	"errors"
	"os"
)

// The journal is mapped on Linux only (fallocate); elsewhere it is
// written with write calls.

func allocate(*os.File, int64, int64) error { return errors.ErrUnsupported }

func mapShared(*os.File, int64, int64) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmap([]byte) error { return nil }

func populate([]byte) error { return errors.ErrUnsupported }
