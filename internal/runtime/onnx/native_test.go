//go:build onnxruntime && cgo

package onnx

import (
	"os"
	"testing"
)

// nativeOptions selects the native engine with the library named by
// $ONNXRUNTIME_LIB (fetch-ort.sh prints a path to use); tests skip
// without it.
func nativeOptions(t *testing.T) Options {
	t.Helper()
	lib := os.Getenv("ONNXRUNTIME_LIB")
	if lib == "" {
		t.Skip("ONNXRUNTIME_LIB is not set; run fetch-ort.sh and export its output")
	}
	return Options{Engine: EngineNative, LibraryPath: lib, IntraOpThreads: 1}
}

func TestGoldenNativeEngine(t *testing.T) { runGolden(t, nativeOptions(t)) }

func TestNodeCasesNativeEngine(t *testing.T) { runNodeCases(t, nativeOptions(t)) }
