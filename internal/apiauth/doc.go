// Package apiauth owns the credentials of `ferry up`'s management API: the
// bearer token it creates (kept 0600 under --data-dir), the per-user record
// through which the CLI finds that token (and a self-signed certificate) by
// server address, the HTTP guard that checks token, Host, Origin, content
// type and body size before any handler runs, and the API's TLS material.
//
// The threat model is in docs/security.md: the API can start processes
// (custom containers run their command as the user of `ferry up`), so no
// request that reads or changes state is served without the token, and a
// browser page can neither send a "simple" cross-origin request that is
// accepted nor reach the API through DNS rebinding.
package apiauth
