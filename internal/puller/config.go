// Package puller keeps a server's models in line with a models config file
// in KServe's TrainedModel format: it watches the file, diffs it against what
// is loaded, pulls and loads added or changed models, unloads removed ones,
// serialises operations per model, and remembers finished pulls in marker
// files so a restart does not download again.
package puller

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
)

// ModelConfig is one entry of the models config file, as KServe's agent
// reads it:
//
//	[{"modelName": "m1", "modelSpec": {"storageUri": "s3://b/m1", "framework": "sklearn", "memory": "256Mi"}}]
type ModelConfig struct {
	Name string    `json:"modelName"`
	Spec ModelSpec `json:"modelSpec"`
}

// ModelSpec says where a model is and what it is.
type ModelSpec struct {
	StorageURI string `json:"storageUri"`
	Framework  string `json:"framework"`
	Memory     string `json:"memory"`
}

// ErrBadConfig marks a models config that cannot be used.
var ErrBadConfig = errors.New("invalid models config")

// ParseConfig decodes and validates a models config file. Entries that are
// individually invalid are returned in bad (name → reason) and left out;
// a file that is not a JSON list fails as a whole.
func ParseConfig(b []byte) (good []ModelConfig, bad map[string]string, err error) {
	var all []ModelConfig
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&all); err != nil {
		return nil, nil, fmt.Errorf("%w: want a JSON list of {\"modelName\", \"modelSpec\": {\"storageUri\", \"framework\", \"memory\"}}: %w", ErrBadConfig, err)
	}
	bad = map[string]string{}
	seen := map[string]bool{}
	for i, m := range all {
		if err := validName(m.Name); err != nil {
			bad[fmt.Sprintf("#%d", i)] = err.Error()
			continue
		}
		if seen[m.Name] {
			bad[m.Name] = "listed more than once"
			continue
		}
		seen[m.Name] = true
		if m.Spec.StorageURI == "" {
			bad[m.Name] = "modelSpec.storageUri is required"
			continue
		}
		if _, err := ParseQuantity(m.Spec.Memory); err != nil {
			bad[m.Name] = "modelSpec.memory: " + err.Error()
			continue
		}
		good = append(good, m)
	}
	return good, bad, nil
}

// validName accepts names usable as a path segment and in URLs.
func validName(n string) error {
	switch {
	case n == "":
		return errors.New("modelName is required")
	case n == "." || n == ".." || strings.ContainsAny(n, `/\`) || strings.Contains(n, ".."):
		return fmt.Errorf("modelName %q must not contain '/', '\\' or '..'", n)
	case len(n) > 253:
		return fmt.Errorf("modelName %q is longer than 253 characters", n)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("modelName %q may hold only letters, digits, '-', '_' and '.'", n)
		}
	}
	return nil
}

// ParseQuantity parses a Kubernetes memory quantity ("256Mi", "1G",
// "1500000", "1Pi") into bytes; "" is 0. It is api.Quantity.Bytes, the parser
// admission uses, so that what ferry apply accepts the replica accepts too.
func ParseQuantity(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := api.Quantity(s).Bytes()
	if err != nil {
		return 0, fmt.Errorf("%q is not a memory quantity (e.g. 512Mi, 1Gi, 1G): %w", s, err)
	}
	return n, nil
}
