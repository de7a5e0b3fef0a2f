// Package mgmt is the contract of `ferry up`'s management API: the wire
// types both sides encode and decode (apply results, list envelopes,
// revisions, events, replicas, logs, errors) and a typed Go client.
//
// The server (internal/controlplane) writes these types and the CLI
// (internal/cli) reads them through Client, so the JSON shape is written
// once. The package is named for the boundary it owns rather than `api`
// (the KServe object types live in internal/api) or `client` (it holds the
// server's half of the contract too).
//
// Errors of the API keep their HTTP status: a request the server refused
// returns *Error, and IsNotFound tells "no such object" from the rest.
package mgmt
