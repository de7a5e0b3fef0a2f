//go:build unix

package http1

import "syscall"

// initRaw prepares reads that do not wait, where the connection has a
// file descriptor.
func (d *deadlineReader) initRaw() {
	sc, ok := d.c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	d.raw, d.readFD = raw, d.readFDNow
}

func (d *deadlineReader) readFDNow(fd uintptr) bool {
	d.tryN, d.tryErr = syscall.Read(int(fd), d.tryP)
	return true // never wait in the poller
}

// readNow reads what the socket holds without waiting for more.
func (d *deadlineReader) readNow(p []byte) (int, error) {
	d.tryP = p
	err := d.raw.Read(d.readFD)
	n := d.tryN
	if err == nil {
		err = d.tryErr
	}
	d.tryP, d.tryN, d.tryErr = nil, 0, nil
	if err != nil || n <= 0 {
		return 0, errWouldWait
	}
	return n, nil
}
