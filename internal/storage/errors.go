package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sentinel errors wrapped by every error a Puller returns, so callers can map
// them without parsing text.
var (
	// ErrInvalidURI: unknown scheme, missing bucket or container, a path that
	// escapes its root, or a URI of the wrong shape (a directory where a file
	// is needed and the reverse).
	ErrInvalidURI = errors.New("invalid storage uri")
	// ErrNotFound: the object, prefix or bucket does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied: the store refused the credentials (or their absence).
	ErrAccessDenied = errors.New("access denied")
	// ErrUnsafeArchive: an archive entry escapes the target directory, is
	// absolute, is a link pointing out, or is of a type that is not unpacked.
	ErrUnsafeArchive = errors.New("unsafe archive")
	// ErrTooLarge: a download or an unpacked archive exceeds its limit.
	ErrTooLarge = errors.New("too large")
	// ErrVerify: a completed download does not match the size or checksum the
	// store reported, or the object changed while it was being read.
	ErrVerify = errors.New("verification failed")
)

// Error is the error type Pull returns. Its text never holds credentials: the
// cause is scrubbed of every secret the Puller knows before it is stored, and
// the original cause is not kept, so nothing reachable by errors.Unwrap leaks
// them either.
type Error struct {
	URI   string // the URI with credentials removed
	Op    string // what failed: "parse", "list", "download", "unpack", "cache"
	Kind  error  // a sentinel above, context.Canceled / DeadlineExceeded, or nil
	cause string
}

func (e *Error) Error() string {
	return fmt.Sprintf("storage: %s %s: %s", e.Op, e.URI, e.cause)
}

// Unwrap returns the sentinel kind (or nil).
func (e *Error) Unwrap() error { return e.Kind }

var kinds = []error{
	ErrInvalidURI, ErrNotFound, ErrAccessDenied, ErrUnsafeArchive, ErrTooLarge, ErrVerify,
	context.DeadlineExceeded, context.Canceled,
}

// kindOf picks the first sentinel err wraps.
func kindOf(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// redactor removes known secrets from text.
type redactor struct{ secrets []string }

const redacted = "REDACTED"

// add records a secret in the forms it may appear in: raw, and escaped for a
// query or a path (SDK errors quote request URLs).
func (r *redactor) add(s string) {
	if len(s) < 4 { // shorter strings would scrub ordinary words
		return
	}
	for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
		r.secrets = append(r.secrets, v)
	}
}

func (r *redactor) scrub(s string) string {
	for _, v := range r.secrets {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return s
}

// wrap turns err into an *Error for uri. It is idempotent.
func (r *redactor) wrap(op, uri string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{URI: uri, Op: op, Kind: kindOf(err), cause: r.scrub(err.Error())}
}

// redactURL returns u with its password and every query value replaced.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
		if _, ok := u.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), redacted)
		}
	}
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			q[k] = []string{redacted}
		}
		c.RawQuery = q.Encode()
	}
	c.Fragment = ""
	return c.String()
}

// errFinal marks a failure that retrying cannot fix (a 4xx other than
// 404/401/403, a changed object).
var errFinal = errors.New("request refused")
