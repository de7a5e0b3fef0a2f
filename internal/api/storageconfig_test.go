package api

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestParseStorageConfigSecret(t *testing.T) {
	cfg, err := LoadStorageConfig("testdata/storage-config/secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := StorageConfig{
		"localMinIO": {"type": "s3", "access_key_id": "minio", "secret_access_key": "minio123",
			"endpoint_url": "http://minio-service.kubeflow:9000", "bucket": "mlpipeline", "region": "us-south", "anonymous": "False"},
		"default_gs": {"type": "gs", "bucket": "public-models"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config = %v\nwant %v", cfg, want)
	}
}

func TestParseStorageConfigPlain(t *testing.T) {
	cfg, err := ParseStorageConfig([]byte("default: {type: s3, bucket: b}\nweb: {type: https}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg["default"]["bucket"] != "b" || cfg["web"]["type"] != "https" {
		t.Errorf("config = %v", cfg)
	}
}

func TestParseStorageConfigErrors(t *testing.T) {
	for in, want := range map[string]string{
		"default: {type: s3, anonymous: true}\n":                                "default.anonymous: expected a string (quote it), got boolean",
		"kind: Secret\nstringData: {k: 'not json'}\n":                           "stringData.k: expected a JSON object of strings",
		"kind: Secret\ndata: {k: '%%%'}\n":                                      "data.k: not base64",
		"- a\n":                                                                 "expected an object of entries or a Secret",
		"default: {type: s3}\ndefault: {type: gs}\n":                            `key "default" already set`,
		"kind: Secret\nstringData: {k: '{\"type\": \"s3\", \"port\": 9000}'}\n": "stringData.k.port: expected a string",
	} {
		_, err := ParseStorageConfig([]byte(in))
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseStorageConfig(%q) error = %v; want %q", in, err, want)
		}
	}
}

func TestLoadStorageConfigMissing(t *testing.T) {
	_, err := LoadStorageConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v; want not exist", err)
	}
}

func TestStorageConfigResolve(t *testing.T) {
	cfg, err := LoadStorageConfig("testdata/storage-config/secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     StorageConfig
		spec    *StorageSpec
		uri     string
		wantURI string
		wantKey string
		wantErr string
	}{
		{name: "no spec", spec: nil, uri: "gs://a/b", wantURI: "gs://a/b"},
		{name: "KServe sample", spec: &StorageSpec{StorageKey: ptr("localMinIO"), Path: ptr("sklearn"), Parameters: map[string]string{"bucket": "example-models"}},
			wantURI: "s3://example-models/sklearn", wantKey: "localMinIO"},
		{name: "bucket from the entry, leading slash", spec: &StorageSpec{StorageKey: ptr("localMinIO"), Path: ptr("/m/v1")},
			wantURI: "s3://mlpipeline/m/v1", wantKey: "localMinIO"},
		{name: "storageUri wins", spec: &StorageSpec{StorageKey: ptr("localMinIO")}, uri: "s3://other/x",
			wantURI: "s3://other/x", wantKey: "localMinIO"},
		{name: "default key by type", spec: &StorageSpec{Path: ptr("iris"), Parameters: map[string]string{"type": "gs"}},
			wantURI: "gs://public-models/iris", wantKey: "default_gs"},
		{name: "no entry, type from parameters", spec: &StorageSpec{Path: ptr("host/m.bst"), Parameters: map[string]string{"type": "https"}},
			wantURI: "https://host/m.bst"},
		{name: "missing key", spec: &StorageSpec{StorageKey: ptr("nope"), Path: ptr("m")},
			wantErr: `spec.predictor.sklearn.storage.key: "nope" is not an entry of the storage config file (entries: default_gs, localMinIO)`},
		{name: "no file", cfg: StorageConfig(nil), spec: &StorageSpec{StorageKey: ptr("k"), Path: ptr("m")},
			wantErr: "needs a storage config file; give it with --storage-config or FERRY_STORAGE_CONFIG"},
		{name: "no type", spec: &StorageSpec{Path: ptr("m")}, wantErr: "spec.predictor.sklearn.storage: no storage type"},
		{name: "hdfs", spec: &StorageSpec{Path: ptr("m"), Parameters: map[string]string{"type": "hdfs"}}, wantErr: "type hdfs is not supported by ferry"},
		{name: "no bucket", spec: &StorageSpec{Path: ptr("m"), Parameters: map[string]string{"type": "s3"}}, wantErr: "type s3 needs a bucket"},
		{name: "no path", spec: &StorageSpec{StorageKey: ptr("localMinIO")}, wantErr: "storage.path: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg != nil || tt.name == "no file" {
				c = tt.cfg
			}
			got, err := c.Resolve("spec.predictor.sklearn", tt.spec, tt.uri)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrStorageConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.URI != tt.wantURI || got.Key != tt.wantKey {
				t.Errorf("target = %s key %q; want %s key %q", got.URI, got.Key, tt.wantURI, tt.wantKey)
			}
		})
	}
}

func TestStorageTargetEnvAndString(t *testing.T) {
	cfg, err := LoadStorageConfig("testdata/storage-config/secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := cfg.Resolve("spec.predictor.sklearn", &StorageSpec{StorageKey: ptr("localMinIO"), Path: ptr("m"), Parameters: map[string]string{"region": "eu-1"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000", "AWS_ACCESS_KEY_ID=minio",
		"AWS_SECRET_ACCESS_KEY=minio123", "AWS_DEFAULT_REGION=eu-1", "awsAnonymousCredential=False"}
	if got := tg.Env(); !reflect.DeepEqual(got, want) {
		t.Errorf("Env() = %q\nwant %q", got, want)
	}
	if s := tg.String(); strings.Contains(s, "minio123") || s != "s3://mlpipeline/m (storage key localMinIO)" {
		t.Errorf("String() = %q", s)
	}
}

func TestStorageSpecs(t *testing.T) {
	data, err := os.ReadFile("testdata/storage-spec.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	refs := objs[0].(*InferenceService).StorageSpecs()
	ref, ok := refs["spec.predictor.sklearn"]
	if len(refs) != 1 || !ok || ref.Component != ComponentPredictor || *ref.Spec.StorageKey != "localMinIO" {
		t.Errorf("StorageSpecs() = %+v", refs)
	}
}
