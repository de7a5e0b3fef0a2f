package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferryserve/ferry/internal/storage"
)

// A single-file URI arrives as a cache directory holding that file; a second
// pull of the unchanged file is served from the cache.
func ExamplePuller_Pull() {
	tmp, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(tmp)
	model := filepath.Join(tmp, "model.bst")
	_ = os.WriteFile(model, []byte("trees"), 0o644)

	cfg := storage.Config{CacheDir: filepath.Join(tmp, "cache")}
	if err := cfg.ApplyEnv(func(string) (string, bool) { return "", false }); err != nil { // os.LookupEnv in a server
		panic(err)
	}
	p, err := storage.New(cfg)
	if err != nil {
		panic(err)
	}
	dir, err := p.Pull(context.Background(), "file://"+model)
	if err != nil {
		panic(err)
	}
	entries, _ := os.ReadDir(dir)
	again, _ := p.Pull(context.Background(), "file://"+model)
	fmt.Println(entries[0].Name(), again == dir)

	_, err = p.Pull(context.Background(), "ftp://example.com/model.bst")
	fmt.Println(err)
	// Output:
	// model.bst true
	// storage: parse ftp://example.com/model.bst: invalid storage uri: unsupported scheme "ftp" (want local path, file://, pvc://, http://, https://, s3://, gs://, az://, https://<account>.blob.core.windows.net)
}
