//go:build !linux

package main

import "time"

// A pacer sleeps a connection's goroutine until a request's intended send
// time. Outside Linux it is a runtime timer, whose wake-ups can be up to a
// millisecond late; the send-lag line of the report shows how late.
type pacer struct{ t *time.Timer }

func newPacer() (*pacer, error) { return &pacer{t: time.NewTimer(time.Hour)}, nil }

// sleepUntil returns at t or soon after; at once if t has passed.
func (p *pacer) sleepUntil(t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	p.t.Reset(d)
	<-p.t.C
	return nil
}

func (p *pacer) Close() error {
	p.t.Stop()
	return nil
}
