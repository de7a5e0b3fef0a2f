package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Format is one runtime's entry: how to recognise its model file and how to
// load it. Runtimes export a Format value; the CLI wires the ones it wants
// into a Registry.
type Format struct {
	// Name is the format's name as users write it (--model-format, and the
	// predictor keys of an InferenceService): "xgboost", "lightgbm", ...
	Name string
	// Match reports whether a file, by its base name and its first bytes
	// (up to 512), is a model file of this format.
	Match func(name string, head []byte) bool
	// Load reads the model file at path.
	Load func(ctx context.Context, path string) (Model, error)
}

// ErrNoModel means a directory holds no file any registered format claims.
var ErrNoModel = errors.New("no model file found")

// Registry holds the formats a server knows. It is read-only after
// construction and safe for concurrent use.
type Registry struct {
	formats []Format
	// Logger, when set, logs a panic in a loader or in a loaded model's
	// Predict (or its workers) with its stack (the load or the request
	// itself fails with a *PanicError).
	Logger *slog.Logger
}

// NewRegistry returns a registry that tries formats in the given order.
func NewRegistry(formats ...Format) *Registry {
	return &Registry{formats: slices.Clone(formats)}
}

// Names lists the registered format names.
func (r *Registry) Names() []string {
	out := make([]string, len(r.formats))
	for i, f := range r.formats {
		out[i] = f.Name
	}
	return out
}

// Lookup finds a format by name.
func (r *Registry) Lookup(name string) (Format, bool) {
	for _, f := range r.formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Detect finds the model file in dir. With format set, only that format's
// files are considered. It returns the chosen format and the file's path.
func (r *Registry) Detect(dir, format string) (Format, string, error) {
	candidates := r.formats
	if format != "" {
		f, ok := r.Lookup(format)
		if !ok {
			return Format{}, "", fmt.Errorf("unknown model format %q (known: %s)", format, strings.Join(r.Names(), ", "))
		}
		candidates = []Format{f}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Format{}, "", fmt.Errorf("read model directory: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, f := range candidates {
		for _, n := range names {
			p := filepath.Join(dir, n)
			head, err := readHead(p)
			if err != nil {
				continue
			}
			if f.Match(n, head) {
				return f, p, nil
			}
		}
	}
	if format != "" {
		return Format{}, "", fmt.Errorf("%w in %s for format %s", ErrNoModel, dir, format)
	}
	return Format{}, "", fmt.Errorf("%w in %s (looked for %s model files)", ErrNoModel, dir, strings.Join(r.Names(), ", "))
}

// Load detects and loads the model in dir. A panic in the format's loader
// comes back as a *PanicError, and the model is wrapped so that one in its
// Predict does too.
func (r *Registry) Load(ctx context.Context, dir, format string) (Model, string, error) {
	f, path, err := r.Detect(dir, format)
	if err != nil {
		return nil, "", err
	}
	var m Model
	err = Contain(func() (err error) {
		m, err = f.Load(ctx, path)
		return err
	})
	if err != nil {
		var pe *PanicError
		if errors.As(err, &pe) {
			logPanic(ctx, r.Logger, "model loader panicked; the load fails, the server goes on", path, pe)
		}
		return nil, f.Name, fmt.Errorf("load %s model %s: %w", f.Name, filepath.Base(path), err)
	}
	// A panic in the model's Predict (or its workers, see Parallel) fails
	// the request, not the process.
	return contained{Model: m, log: r.Logger, file: path}, f.Name, nil
}

// HasModelFile reports whether dir directly holds a file some format claims.
func (r *Registry) HasModelFile(dir, format string) bool {
	_, _, err := r.Detect(dir, format)
	return err == nil
}

func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}
