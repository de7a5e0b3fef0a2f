package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LocalFetcher resolves storage URIs that need no download: local paths,
// file:// URIs, and pvc://CLAIM/PATH under PVCRoot (each claim a
// directory there). Remote schemes are internal/storage's job.
type LocalFetcher struct {
	PVCRoot string
	// BaseDir resolves relative paths (the directory `ferry up -f` read).
	BaseDir string
}

// Pull implements Fetcher.
func (f LocalFetcher) Pull(_ context.Context, uri string) (string, error) {
	var p string
	switch {
	case strings.HasPrefix(uri, "file://"):
		p = strings.TrimPrefix(uri, "file://")
	case strings.HasPrefix(uri, "pvc://"):
		if f.PVCRoot == "" {
			return "", fmt.Errorf("%s: set --pvc-root to the directory holding the claims", uri)
		}
		p = filepath.Join(f.PVCRoot, filepath.Clean("/"+strings.TrimPrefix(uri, "pvc://")))
	case strings.Contains(uri, "://"):
		return "", fmt.Errorf("%s: scheme %q needs remote storage support", uri, uri[:strings.Index(uri, "://")])
	default:
		p = uri
	}
	if !filepath.IsAbs(p) && f.BaseDir != "" {
		p = filepath.Join(f.BaseDir, p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", uri, err)
	}
	if !st.IsDir() {
		// A single model file: serve its directory.
		return filepath.Dir(p), nil
	}
	return p, nil
}
