//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package quality

import (
	"fmt"
	"os"
)

// lockDir only creates dir/LOCK here: this platform has no flock, so
// keeping two processes off one journal is the operator's job.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+"/LOCK", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("quality journal lock: %w", err)
	}
	return f, nil
}
