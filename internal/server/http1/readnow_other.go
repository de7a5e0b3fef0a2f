//go:build !unix

package http1

// initRaw leaves raw nil off Unix: connections do not yield for their
// next request (conn.yieldForRequest).
func (d *deadlineReader) initRaw() {}

// readNow is never called off Unix.
func (d *deadlineReader) readNow([]byte) (int, error) { return 0, errWouldWait }
