//go:build !unix

package storage

import "context"

// fileLock without flock(2): only the in-process coalescing applies, so
// processes sharing a cache may download the same entry twice (the rename
// into place stays atomic, and the loser's rename fails harmlessly).
type fileLock struct{}

func lockFile(context.Context, string, bool) (*fileLock, bool, error) {
	return &fileLock{}, true, nil
}

func (*fileLock) unlock() {}
