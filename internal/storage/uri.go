package storage

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// Schemes Pull understands, for error messages.
const supportedSchemes = "local path, file://, pvc://, http://, https://, s3://, gs://, az://, https://<account>.blob.core.windows.net"

// location is a parsed storage URI.
type location struct {
	scheme  string // "file", "http", "s3", "gs", "azure"
	display string // the URI with credentials removed
	norm    string // the normalised URI the cache key starts from

	localPath string   // file: absolute path
	url       *url.URL // http: the request URL

	bucket  string // s3/gs bucket, azure container
	key     string // object key or prefix ("" for the whole bucket)
	dirOnly bool   // the URI ended in "/": it names a directory, never an object
	account string // azure storage account ("" for az:// uses the configured one)
	sas     string // azure SAS token carried in the URI's query
}

// parseURI parses raw. pvcRoot is where pvc://<claim>/<path> is mounted.
func parseURI(raw, pvcRoot string) (location, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return location{}, fmt.Errorf("%w: empty uri", ErrInvalidURI)
	}
	if strings.ContainsRune(raw, 0) {
		return location{}, fmt.Errorf("%w: uri contains a NUL byte", ErrInvalidURI)
	}
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		if strings.Contains(raw, ":") && !strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, ".") {
			if s, _, _ := strings.Cut(raw, ":"); isSchemeName(s) && !strings.Contains(s, "/") {
				return location{}, fmt.Errorf("%w: unsupported scheme %q (want %s)", ErrInvalidURI, s, supportedSchemes)
			}
		}
		return localLocation(raw, raw)
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "file":
		p := rest
		if !strings.HasPrefix(p, "/") { // file://host/path is not supported; file://relative is
			if h, _, _ := strings.Cut(p, "/"); h == "localhost" {
				p = strings.TrimPrefix(p, "localhost")
			}
		}
		if q, err := url.PathUnescape(p); err == nil {
			p = q
		}
		return localLocation(p, "file://"+rest)
	case "pvc":
		return pvcLocation(rest, pvcRoot)
	case "s3", "gs":
		return bucketLocation(scheme, rest)
	case "az":
		l, err := bucketLocation("azure", rest)
		if err != nil {
			return l, err
		}
		// az://<container>/<path>: the account comes from the configuration.
		l.display, l.norm = "az://"+rest, "az:///"+strings.TrimPrefix(l.norm, "azure://")
		return l, nil
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil {
			return location{}, fmt.Errorf("%w: %s", ErrInvalidURI, strings.ReplaceAll(err.Error(), raw, "the uri"))
		}
		if u.Host == "" {
			return location{}, fmt.Errorf("%w: %s uri has no host", ErrInvalidURI, scheme)
		}
		if acct, ok := strings.CutSuffix(strings.ToLower(u.Hostname()), ".blob.core.windows.net"); ok {
			return azureURLLocation(u, acct)
		}
		u.Host = strings.ToLower(u.Host)
		u.Fragment = ""
		return location{scheme: "http", url: u, display: redactURL(u), norm: u.String()}, nil
	default:
		return location{}, fmt.Errorf("%w: unsupported scheme %q (want %s)", ErrInvalidURI, scheme, supportedSchemes)
	}
}

func isSchemeName(s string) bool {
	if s == "" || len(s) == 1 { // "C:" is a drive letter, not a scheme
		return false
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

func localLocation(p, display string) (location, error) {
	if p == "" {
		return location{}, fmt.Errorf("%w: empty path", ErrInvalidURI)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return location{}, fmt.Errorf("%w: %w", ErrInvalidURI, err)
	}
	return location{scheme: "file", localPath: abs, display: display, norm: "file://" + abs,
		dirOnly: strings.HasSuffix(p, "/")}, nil
}

// pvcLocation resolves pvc://<claim>/<path> under root, refusing paths that
// climb out of it.
func pvcLocation(rest, root string) (location, error) {
	display := "pvc://" + rest
	if root == "" {
		return location{}, fmt.Errorf("%w: pvc:// needs a mount root (Config.PVCRoot)", ErrInvalidURI)
	}
	claim, sub, _ := strings.Cut(rest, "/")
	if claim == "" || claim == "." || claim == ".." {
		return location{}, fmt.Errorf("%w: pvc uri has no claim name", ErrInvalidURI)
	}
	rel := path.Clean("/" + claim + "/" + sub)
	if !strings.HasPrefix(rel, "/"+claim) || hasDotDot(sub) {
		return location{}, fmt.Errorf("%w: pvc path escapes its claim", ErrInvalidURI)
	}
	l, err := localLocation(filepath.Join(root, filepath.FromSlash(rel)), display)
	l.dirOnly = strings.HasSuffix(rest, "/")
	return l, err
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// bucketLocation parses "<bucket>/<key>" for s3://, gs:// and az://.
func bucketLocation(scheme, rest string) (location, error) {
	bucket, key, _ := strings.Cut(rest, "/")
	if i := strings.IndexAny(key, "?#"); i >= 0 {
		return location{}, fmt.Errorf("%w: %s uri may not carry a query or fragment", ErrInvalidURI, scheme)
	}
	if bucket == "" {
		return location{}, fmt.Errorf("%w: %s uri has no bucket", ErrInvalidURI, scheme)
	}
	if strings.ContainsAny(bucket, "?#@:") {
		return location{}, fmt.Errorf("%w: bad bucket name %q", ErrInvalidURI, bucket)
	}
	return objectLocation(scheme, bucket, key, scheme+"://"+bucket+"/"+key)
}

func objectLocation(scheme, bucket, key, display string) (location, error) {
	if hasDotDot(key) {
		return location{}, fmt.Errorf("%w: key may not contain \"..\"", ErrInvalidURI)
	}
	dirOnly := key == "" || strings.HasSuffix(key, "/")
	key = strings.Trim(key, "/")
	l := location{scheme: scheme, bucket: bucket, key: key, dirOnly: dirOnly, display: display,
		norm: scheme + "://" + bucket + "/" + key}
	if dirOnly {
		l.norm += "/"
	}
	return l, nil
}

// azureURLLocation parses https://<account>.blob.core.windows.net/<container>/<path>[?SAS].
func azureURLLocation(u *url.URL, account string) (location, error) {
	container, key, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if container == "" {
		return location{}, fmt.Errorf("%w: azure blob uri has no container", ErrInvalidURI)
	}
	l, err := objectLocation("azure", container, key, redactURL(u))
	if err != nil {
		return l, err
	}
	l.account = account
	l.sas = u.RawQuery
	l.norm = "az://" + account + "/" + container + "/" + l.key // the SAS is not part of the identity
	if l.dirOnly {
		l.norm += "/"
	}
	return l, nil
}
