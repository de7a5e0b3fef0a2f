package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

type pullOptions struct {
	storage   storageOptions
	logLevel  string
	logFormat string
	config    string
}

// pullStaging is the directory ferry pull downloads into, inside DIR so
// that the finished files move into place by rename; it is removed before
// the command returns.
const pullStaging = ".ferry-pull"

func newPullCmd() *cobra.Command {
	o := &pullOptions{}
	cmd := &cobra.Command{
		Use:   "pull URI DIR",
		Short: "Download a model from a storage URI into a directory (KServe's storage initializer)",
		Long: `Download the model at URI (s3://, gs://, az://, https://, http://, pvc://, file://
or a local path) into DIR, unpacking a single .zip, .tar, .tar.gz or .tgz, and
exit: the contract of KServe's storage-initializer init container, which the
operator runs as "ferry pull <storageUri> /mnt/models".

Credentials and endpoints come from KServe's environment variables
(AWS_ACCESS_KEY_ID, S3_ENDPOINT, GOOGLE_APPLICATION_CREDENTIALS,
AZURE_STORAGE_ACCESS_KEY, ...), the size and time bounds from the
--storage-* flags, as for "ferry serve --model-uri". Files already in DIR
with the names of pulled ones are replaced, so a rerun after a restart
succeeds. Without --storage-cache-dir the download is staged inside DIR and
nothing stays behind but the model.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runPull(cmd.Context(), o, args[0], args[1], cmd)
		},
	}
	f := cmd.Flags()
	o.storage.addFlags(f)
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

func runPull(ctx context.Context, o *pullOptions, uri, dir string, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if uri == "" || dir == "" {
		return errors.New("pull: want a URI and a directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	opts := o.storage
	staging := ""
	if opts.cacheDir == "" {
		// A cache of its own, beside the result: one rename per top-level
		// entry puts the model in place, and no second copy is left.
		staging = filepath.Join(dir, pullStaging)
		opts.cacheDir = staging
		defer os.RemoveAll(staging)
	}
	store, err := newStorage(opts, log, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	src, err := store.Pull(ctx, uri)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	absSrc, _ := filepath.Abs(src)
	absDir, _ := filepath.Abs(dir)
	if absSrc == absDir {
		log.Info("model already in place", "dir", dir)
		return nil
	}
	move := staging != "" && strings.HasPrefix(absSrc, mustAbs(staging)+string(filepath.Separator))
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	var files int
	var size int64
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())
		if e.Name() == pullStaging {
			continue
		}
		if err := os.RemoveAll(to); err != nil {
			return fmt.Errorf("pull: replace %s: %w", to, err)
		}
		if move {
			if err := os.Rename(from, to); err != nil {
				return fmt.Errorf("pull: %w", err)
			}
		} else if err := copyTree(from, to); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		n, b, err := countTree(to)
		if err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		files, size = files+n, size+b
	}
	log.Info("pulled model", "dir", dir, "files", files, "bytes", size)
	return nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// copyTree copies the file or directory from to to (regular files,
// directories and symbolic links).
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			return copyFile(p, dst)
		}
		return fmt.Errorf("%s: not a regular file, directory or link", p)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// countTree counts the regular files under p and their bytes.
func countTree(p string) (files int, size int64, err error) {
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			size += info.Size()
		}
		return nil
	})
	return files, size, err
}
