package controlplane

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestProcessRunnerRecordsPIDsAndPorts: replicas made by ProcessRunner
// record their PID in the spec's PIDDir while they run (so a later ferry
// up can reap them), report distinct HTTP and gRPC addresses once ready,
// and keep logs by replica name.
func TestProcessRunnerRecordsPIDsAndPorts(t *testing.T) {
	pidDir := t.TempDir()
	rs := ProcessRunner{}.Replicas(ReplicaSpec{Service: "default/m", Revision: "m-predictor-00001", Template: childTemplate, LogDir: t.TempDir(), PIDDir: pidDir}, func() {})
	defer rs.Close()
	if err := rs.Scale(1); err != nil {
		t.Fatal(err)
	}
	httpAddrs := waitBackends(t, rs.(*ReplicaSet), 1)
	grpc := rs.GRPCBackends()
	if len(grpc) != 1 || !strings.HasPrefix(grpc[0], "127.0.0.1:") || grpc[0] == httpAddrs[0] {
		t.Fatalf("gRPC backends %v (HTTP %v), want one other loopback port", grpc, httpAddrs)
	}
	st := rs.Status()
	if len(st) != 1 || st[0].GRPCPort == 0 || "127.0.0.1:"+strconv.Itoa(st[0].HTTPPort) != httpAddrs[0] {
		t.Fatalf("status %+v does not match backend %s", st, httpAddrs[0])
	}
	pids, _ := filepath.Glob(filepath.Join(pidDir, "*.pid"))
	if len(pids) != 1 || !strings.HasPrefix(filepath.Base(pids[0]), st[0].Name+"-") {
		t.Fatalf("PID files %v, want one for %s", pids, st[0].Name)
	}
	if logs := rs.Logs(10); len(logs) != 1 {
		t.Fatalf("logs by replica %v, want one entry", logs)
	} else if _, ok := logs[st[0].Name]; !ok {
		t.Fatalf("logs keyed %v, want %s", logs, st[0].Name)
	}
	rs.Close()
	if len(rs.GRPCBackends()) != 0 {
		t.Fatal("gRPC backends left after Close")
	}
	if _, err := os.Stat(pids[0]); !os.IsNotExist(err) {
		t.Fatalf("PID file %s left after Close: %v", pids[0], err)
	}
}
