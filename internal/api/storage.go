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

// hubPrefix is KServe's scheme for models on the Hugging Face Hub.
const hubPrefix = "hf://"

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
	if strings.HasPrefix(uri, hubPrefix) {
		errs.add(path, "%s: Hugging Face Hub URIs are not supported, ferry does not download from the hub; download the model (e.g. huggingface-cli download %s --local-dir DIR) and give its local path, or copy it to s3://, gs:// or https://", uri, strings.TrimPrefix(uri, hubPrefix))
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
	case strings.HasPrefix(uri, hubPrefix):
		checkStorageURI(errs, path, uri)
	case !hasPrefix(uri, trainedModelPrefixes):
		errs.add(path, "unsupported URI scheme %q; supported: %s", uri, strings.Join(trainedModelPrefixes, ", "))
	case strings.Contains(uri, azureBlobHost) && !azureBlobRE.MatchString(uri):
		errs.add(path, "invalid Azure blob URI %q; expected https://<account>%s/<container>/<path>", uri, azureBlobHost)
	}
}
