package controlplane

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestReplicaPorts: ports come from below the ephemeral range, are not
// handed out twice while held, and a port another listener holds is
// skipped; an exhausted range says so.
func TestReplicaPorts(t *testing.T) {
	start := ephemeralStart()
	seen := map[int]bool{}
	for range 100 {
		p, err := replicaPorts().port()
		if err != nil {
			t.Fatal(err)
		}
		if p < replicaPortMin || p >= start {
			t.Fatalf("port %d outside [%d, %d): an outgoing connection's source port could take it", p, replicaPortMin, start)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}

	// A range of three ports, one held by a listener: the other two, then
	// none.
	var lo int
	var held net.Listener
	for base := 20000; base < 30000; base += 7 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+1))
		if err != nil {
			continue
		}
		free := true
		for _, p := range []int{base, base + 2} {
			if c, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err != nil {
				free = false
			} else {
				c.Close()
			}
		}
		if free {
			lo, held = base, l
			break
		}
		l.Close()
	}
	if held == nil {
		t.Skip("no three consecutive loopback ports to test with")
	}
	defer held.Close()
	a := &portAllocator{lo: lo, hi: lo + 3, handed: map[int]time.Time{}}
	got := map[int]bool{}
	for range 2 {
		p, err := a.port()
		if err != nil {
			t.Fatal(err)
		}
		got[p] = true
	}
	if !got[lo] || !got[lo+2] {
		t.Errorf("ports %v, want %d and %d (%d is held by a listener)", got, lo, lo+2, lo+1)
	}
	if _, err := a.port(); !errors.Is(err, errNoPort) {
		t.Errorf("third port: %v, want errNoPort", err)
	}
}
