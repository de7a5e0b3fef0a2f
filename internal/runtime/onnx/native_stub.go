//go:build !onnxruntime || !cgo

package onnx

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
)

// nativeBuilt reports whether this binary contains the ONNX Runtime engine.
const nativeBuilt = false

func newNativeEngine(*onnxpb.ModelProto, []byte, Options) (engine, error) {
	return nil, fmt.Errorf("%w: the native ONNX Runtime engine is not in this build: rebuild with CGO_ENABLED=1 and -tags onnxruntime, and give the library with --onnxruntime-lib; or use --onnx-engine go", runtime.ErrUnsupported)
}
