// Package storage turns a model's storageUri into a local directory.
//
// It owns the URI schemes Ferry pulls from (local paths and file://, pvc://,
// http(s)://, s3://, gs://, Azure Blob as https://<account>.blob.core.windows.net
// or az://), their credentials, and a content-addressed on-disk cache shared by
// every Ferry process on the machine. A Puller lists what the URI names, keys
// the cache on the normalised URI plus each object's size and version (ETag or
// generation), and downloads only on a miss: concurrent pulls of one URI
// coalesce in-process (singleflight) and across processes (a flock on a lock
// file per key). Downloads land in a staging directory, are verified (size,
// and MD5 where the store gives one), unpacked when the URI names a single
// .zip, .tar, .tar.gz or .tgz file, and only then renamed into place, so a
// partial download never looks complete.
//
// Errors name the URI with credentials removed and wrap one of the sentinel
// errors below so callers can tell a bad URI from a missing object from a
// refused credential.
package storage
