//go:build !linux

package supervisor

import "syscall"

// procAttr puts the replica in its own process group. Outside Linux there
// is no parent-death signal: leftovers are reaped at the next start from
// their PID files (see Reap).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
