package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// IntOrString is a port given either as a number or as the name of one of
// the container's ports, like Kubernetes' intstr.IntOrString.
type IntOrString struct {
	IsString bool
	Int      int32
	Str      string
}

// FromInt returns an IntOrString holding a number.
func FromInt(i int32) IntOrString { return IntOrString{Int: i} }

// FromString returns an IntOrString holding a name.
func FromString(s string) IntOrString { return IntOrString{IsString: true, Str: s} }

// String returns the number in decimal or the name.
func (v IntOrString) String() string {
	if v.IsString {
		return v.Str
	}
	return strconv.Itoa(int(v.Int))
}

// IsZero reports whether v is unset (the number 0).
func (v IntOrString) IsZero() bool { return !v.IsString && v.Int == 0 }

// MarshalJSON writes a number or a string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.Str)
	}
	return json.Marshal(v.Int)
}

// UnmarshalJSON accepts a 32-bit integer or a string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = FromString(s)
		return nil
	}
	i, err := strconv.ParseInt(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("expected an integer or a string, got %s", b)
	}
	*v = FromInt(int32(i))
	return nil
}

// Resolve returns the port number, looking a name up among ports.
func (v IntOrString) Resolve(ports []ContainerPort) (int, error) {
	if !v.IsString {
		return int(v.Int), nil
	}
	if n, err := strconv.Atoi(v.Str); err == nil {
		return n, nil
	}
	for _, p := range ports {
		if p.Name == v.Str {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", v.Str)
}
