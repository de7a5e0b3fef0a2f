// Package reqlog is the request/response logger: every inference request
// and response becomes a CloudEvent v1.0 (ce-type
// org.kubeflow.serving.inference.request / .response, one shared ce-id per
// pair), delivered asynchronously to an HTTP sink (binary mode, e.g. a
// Knative broker) or a JSON-lines file. Delivery never changes or delays
// what the client gets: events go through a bounded queue that spools to
// disk while the sink is slow or down, and are delivered at least once when
// it returns. Error responses are logged too, with their status code.
package reqlog

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// Event types, as KServe's logger names them.
const (
	TypeRequest  = "org.kubeflow.serving.inference.request"
	TypeResponse = "org.kubeflow.serving.inference.response"
)

// Event is one CloudEvent.
type Event struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	Source      string            `json:"source"`
	Time        time.Time         `json:"time"`
	ContentType string            `json:"datacontenttype,omitempty"`
	Extensions  map[string]string `json:"extensions,omitempty"`
	Data        []byte            `json:"data_base64,omitempty"`
}

// newID returns a random UUIDv4-formatted id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// extName turns a header or attribute name into a valid CloudEvents
// extension name (lower-case letters and digits only).
func extName(s string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
