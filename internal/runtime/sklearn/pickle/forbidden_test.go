package pickle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// protocol0Call is a protocol-0 pickle calling module.name(arg), the
// classic payload shape.
func protocol0Call(module, name, arg string) []byte {
	return []byte("c" + module + "\n" + name + "\n(V" + arg + "\ntR.")
}

// stackGlobalCall is the protocol-4 form of the same call.
func stackGlobalCall(module, name, arg string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x80, 0x04})
	for _, s := range []string{module, name} {
		b.WriteByte(0x8c)
		b.WriteByte(byte(len(s)))
		b.WriteString(s)
	}
	b.WriteByte(0x93)
	b.WriteByte(0x8c)
	b.WriteByte(byte(len(arg)))
	b.WriteString(arg)
	b.Write([]byte{0x85, 'R', '.'})
	return b.Bytes()
}

func TestForbiddenGlobals(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	cases := []struct {
		name   string
		pickle []byte
		global string
	}{
		{"os.system p0", protocol0Call("os", "system", "touch "+marker), "os.system"},
		{"posix.system p4", stackGlobalCall("posix", "system", "touch "+marker), "posix.system"},
		{"builtins.eval", stackGlobalCall("builtins", "eval", "open('"+marker+"','w')"), "builtins.eval"},
		{"builtins.exec", protocol0Call("builtins", "exec", "import os"), "builtins.exec"},
		{"builtins.open", protocol0Call("builtins", "open", marker), "builtins.open"},
		{"subprocess.Popen", stackGlobalCall("subprocess", "Popen", "touch "+marker), "subprocess.Popen"},
		{"builtins.getattr", protocol0Call("builtins", "getattr", "x"), "builtins.getattr"},
		{"sklearn class not allowed", protocol0Call("sklearn.svm._classes", "SVC", ""), "sklearn.svm._classes.SVC"},
		{"INST opcode", []byte("(ios\nsystem\n."), "os.system"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(t.Context(), bytes.NewReader(c.pickle), true, Options{Allow: func(Global) bool { return false }})
			var fe *ForbiddenError
			if !errors.As(err, &fe) || !errors.Is(err, ErrForbidden) {
				t.Fatalf("got %v, want a ForbiddenError", err)
			}
			if fe.Global.String() != c.global || !strings.Contains(err.Error(), c.global) {
				t.Errorf("error %q does not name %s", err, c.global)
			}
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Fatalf("the payload ran: %s exists", marker)
			}
		})
	}
}

// The file gen.py writes with a real os.system payload (pickled by CPython
// as posix.system).
func TestForbiddenGoldenPayload(t *testing.T) {
	f, err := os.Open("../testdata/models/evil_os_system.pkl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Load(t.Context(), f, Options{})
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "posix.system") {
		t.Fatalf("got %v, want a refusal naming posix.system", err)
	}
	if _, err := os.Stat("/tmp/ferry-pwned"); err == nil {
		t.Log("note: /tmp/ferry-pwned exists from elsewhere; this reader cannot have made it")
	}
}

// Even a caller that allows everything gets inert data: the payload is a
// record, not a call.
func TestAllowedGlobalIsInert(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pwned")
	v, err := Decode(t.Context(), bytes.NewReader(protocol0Call("os", "system", "touch "+marker)), false,
		Options{Allow: func(Global) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*Object)
	if !ok || o.Class.String() != "os.system" || len(o.Args) != 1 {
		t.Fatalf("got %#v, want an inert os.system record", v)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("the payload ran")
	}
}
