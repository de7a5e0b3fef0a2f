package storage

import "strings"

// credentialPrefixes are the environment variables ApplyEnv reads (and the
// HTTP proxy and CA settings the transports honour): what a child process
// needs to pull the way its parent would.
var credentialPrefixes = []string{"AWS_", "S3_", "GOOGLE_", "STORAGE_EMULATOR_HOST", "AZURE_", "awsAnonymousCredential",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// CredentialEnv picks from environ (KEY=VALUE entries, as os.Environ) the
// storage credentials and settings, to hand to a child process that pulls
// its own models. The values are secrets: callers must not log them.
func CredentialEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		key, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		for _, p := range credentialPrefixes {
			if strings.HasPrefix(key, p) {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}
