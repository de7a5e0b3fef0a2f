package api

import (
	"regexp"
	"strings"
)

// StorageURIPrefixes are the schemes an InferenceService storageUri may use;
// a string without a scheme is a local path.
var storageURIPrefixes = []string{"gs://", "s3://", "pvc://", "file://", "https://", "http://", "az://"}

// trainedModelPrefixes are the schemes the model puller fetches; KServe's
// TrainedModel webhook requires one (no local paths).
var trainedModelPrefixes = []string{"gs://", "s3://", "https://", "http://", "file://", "az://"}

const azureBlobHost = ".blob.core.windows.net"

var (
	schemeRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	azureBlobRE = regexp.MustCompile(`^https://[^/]+\.blob\.core\.windows\.net/[^/]+/.*[^/]`)
)

// checkStorageURI applies KServe's rule: no scheme means a local path; an
// Azure blob URL must name an account, a container and a path; otherwise the
// scheme must be one of storageURIPrefixes.
func checkStorageURI(errs *fieldErrors, path, uri string) {
	if uri == "" || !schemeRE.MatchString(uri) {
		return
	}
	if strings.Contains(uri, azureBlobHost) {
		if !azureBlobRE.MatchString(uri) {
			errs.add(path, "invalid Azure blob URI %q; expected https://<account>%s/<container>/<path>", uri, azureBlobHost)
		}
		return
	}
	if !hasPrefix(uri, storageURIPrefixes) {
		errs.add(path, "unsupported URI scheme %q; supported: %s, local path", uri, strings.Join(storageURIPrefixes, ", "))
	}
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func checkTrainedModelURI(errs *fieldErrors, path, uri string) {
	switch {
	case uri == "":
		errs.add(path, "required")
	case !hasPrefix(uri, trainedModelPrefixes):
		errs.add(path, "unsupported URI scheme %q; supported: %s", uri, strings.Join(trainedModelPrefixes, ", "))
	case strings.Contains(uri, azureBlobHost) && !azureBlobRE.MatchString(uri):
		errs.add(path, "invalid Azure blob URI %q; expected https://<account>%s/<container>/<path>", uri, azureBlobHost)
	}
}
