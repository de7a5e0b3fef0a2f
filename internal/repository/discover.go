package repository

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// ModelFileDetector reports whether a directory directly holds a model file;
// *runtime.Registry's HasModelFile is one.
type ModelFileDetector func(dir, format string) bool

// Discover maps a --model-dir to model sources, as `ferry serve` documents:
// a directory holding a model file (or numeric version subdirectories that
// do) is one model named name (default: the directory's base name);
// otherwise each subdirectory is a model named after it.
func Discover(dir, name, format string, hasModel ModelFileDetector) ([]Source, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("model directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("model directory %s is not a directory", dir)
	}
	if name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		name = filepath.Base(abs)
	}
	if isModelDir(dir, format, hasModel) {
		return []Source{{Name: name, Dir: dir, Format: format}}, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model directory: %w", err)
	}
	var out []Source
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if isModelDir(sub, format, hasModel) {
			out = append(out, Source{Name: e.Name(), Dir: sub, Format: format})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no models in %s: put a model file there, or one subdirectory per model", dir)
	}
	return out, nil
}

func isModelDir(dir, format string, hasModel ModelFileDetector) bool {
	if hasModel(dir, format) {
		return true
	}
	vs, err := versionDirs(dir)
	return err == nil && len(vs) > 0 && vs[0].version != "" && hasModel(vs[len(vs)-1].dir, format)
}

type versionDir struct {
	version string
	dir     string
}

// versionDirs lists dir's numeric subdirectories in ascending order, or dir
// itself as the single unversioned version when it has none.
func versionDirs(dir string) ([]versionDir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read model directory: %w", err)
	}
	var out []versionDir
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := strconv.ParseUint(e.Name(), 10, 63); err == nil {
			out = append(out, versionDir{version: e.Name(), dir: filepath.Join(dir, e.Name())})
		}
	}
	if len(out) == 0 {
		return []versionDir{{dir: dir}}, nil
	}
	slices.SortFunc(out, func(a, b versionDir) int { return compareVersions(a.version, b.version) })
	return out, nil
}

// compareVersions orders numeric versions numerically, others lexically.
func compareVersions(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
