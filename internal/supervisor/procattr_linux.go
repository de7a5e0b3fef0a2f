package supervisor

import "syscall"

// procAttr puts the replica in its own process group (so stopping it stops
// everything it started) and asks the kernel to SIGKILL it when the
// supervising process dies, even by kill -9, so no replica outlives
// `ferry up`.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
