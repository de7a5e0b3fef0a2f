package controlplane

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Replica ports are chosen below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768–60999 by default). A port
// from that range, found free by listening on port 0, can be taken by
// the source port of an outgoing connection (the ingress's pooled
// connections to other replicas, a prober) before the replica binds it,
// and a long-lived connection then keeps the replica, restarted on the
// same port, failing with "address already in use". Outgoing connections
// never use ports below the range.
const (
	replicaPortMin = 10000 // above the ports servers are usually configured on
	// replicaPortHeld keeps a port from being handed out again while the
	// replica it went to may not have bound it yet.
	replicaPortHeld = time.Minute
)

type portAllocator struct {
	mu     sync.Mutex
	lo, hi int // [lo, hi)
	handed map[int]time.Time
}

// replicaPorts is made on first use, so that commands that start no
// replica read nothing from /proc.
var replicaPorts = sync.OnceValue(func() *portAllocator { return newPortAllocator(ephemeralStart()) })

func newPortAllocator(ephemeral int) *portAllocator {
	return &portAllocator{lo: replicaPortMin, hi: max(ephemeral, replicaPortMin+1000), handed: map[int]time.Time{}}
}

// ephemeralStart reads the first port of the kernel's ephemeral range;
// 32768 (Linux's default) when it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= replicaPortMin {
		return 32768
	}
	return n
}

var errNoPort = errors.New("no free loopback port below the ephemeral range")

// port returns a loopback port that was free a moment ago and has not
// been handed out in the last replicaPortHeld.
func (a *portAllocator) port() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for p, t := range a.handed {
		if now.Sub(t) > replicaPortHeld {
			delete(a.handed, p)
		}
	}
	for range 200 {
		p := a.lo + rand.IntN(a.hi-a.lo)
		if _, held := a.handed[p]; held {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // in use
		}
		_ = l.Close()
		a.handed[p] = now
		return p, nil
	}
	return 0, fmt.Errorf("allocate port: %w (%d–%d)", errNoPort, a.lo, a.hi-1)
}
