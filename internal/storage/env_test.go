package storage

import (
	"slices"
	"testing"
)

func TestCredentialEnv(t *testing.T) {
	got := CredentialEnv([]string{
		"PATH=/bin", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b", "S3_ENDPOINT=http://127.0.0.1:9000",
		"GOOGLE_APPLICATION_CREDENTIALS=/k.json", "STORAGE_EMULATOR_HOST=127.0.0.1:4443", "AZURE_STORAGE_KEY=c",
		"FERRY_TOKEN=secret", "FERRY_HTTP_PORT=1", "HTTPS_PROXY=http://proxy:3128", "garbage",
	})
	want := []string{"AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b", "S3_ENDPOINT=http://127.0.0.1:9000",
		"GOOGLE_APPLICATION_CREDENTIALS=/k.json", "STORAGE_EMULATOR_HOST=127.0.0.1:4443", "AZURE_STORAGE_KEY=c", "HTTPS_PROXY=http://proxy:3128"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Every variable ApplyEnv reads passes.
	env := map[string]string{}
	for _, kv := range got {
		k, v, _ := cutKV(kv)
		env[k] = v
	}
	var cfg Config
	if err := cfg.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if cfg.S3.AccessKeyID != "a" || cfg.S3.Endpoint == "" || cfg.GCS.CredentialsFile != "/k.json" || cfg.Azure.AccountKey != "c" {
		t.Fatalf("credentials lost: %+v", cfg)
	}
}

func cutKV(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}
