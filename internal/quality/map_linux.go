//go:build linux

package quality

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// allocatingFS are the filesystems (statfs f_type) whose fallocate
// reserves blocks that a later store into a mapped page uses without
// allocating: ext2/3/4, XFS and tmpfs. On the others (copy-on-write ones
// such as btrfs and ZFS, which may need new blocks on every write and
// whose fallocate may reserve nothing; overlayfs, whose upper layer may be
// one of them; network filesystems) a full disk could fault a store, which
// kills the process with SIGBUS, so the journal is written with write
// calls there.
var allocatingFS = map[int64]string{0xEF53: "ext4", 0x58465342: "xfs", 0x01021994: "tmpfs"}

// allocate reserves the blocks of f's bytes [off, off+n), extending the
// file, so that stores through a mapping of them never need a block the
// disk may not have (a fault the kernel cannot back kills the process
// with SIGBUS).
func allocate(f *os.File, off, n int64) error {
	fd := int(f.Fd())
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if _, ok := allocatingFS[int64(st.Type)]; !ok {
		return fmt.Errorf("filesystem type %#x: %w", st.Type, errors.ErrUnsupported)
	}
	for {
		err := syscall.Fallocate(fd, 0, off, n)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("fallocate: %w", err)
		}
		return nil
	}
}

// mapShared maps f's bytes [off, off+n) shared and writable: stores into
// it are stores into the page cache, which outlives the process.
func mapShared(f *os.File, off, n int64) ([]byte, error) {
	b, err := syscall.Mmap(int(f.Fd()), off, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return b, nil
}

func unmap(b []byte) error { return syscall.Munmap(b) }

// madvPopulateWrite (Linux 5.14) faults pages in writable, as stores
// would, without storing: safe beside other goroutines' copies.
const madvPopulateWrite = 23

// populate faults b's pages in (a page's first store costs a fault of
// several microseconds: its page cache page, its dirtying, the file's
// times), so that copies into them, under the journal's lock, do not.
func populate(b []byte) error {
	if err := syscall.Madvise(b, madvPopulateWrite); err != nil {
		return fmt.Errorf("madvise: %w", err)
	}
	return nil
}
