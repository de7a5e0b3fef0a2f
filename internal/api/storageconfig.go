package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// StorageConfig is KServe's storage-config secret, read from a file: for each
// key, an entry of string values such as
//
//	{"type": "s3", "bucket": "models", "endpoint_url": "http://minio:9000",
//	 "access_key_id": "minio", "secret_access_key": "minio123", "region": "us-east-1"}
//
// A model spec's storage field selects an entry by key and names a path;
// Resolve turns the pair into a storage URI and the credentials to pull it
// with. Entries hold secrets: never log them.
type StorageConfig map[string]map[string]string

// StorageConfigEnv names the environment variable, and StorageConfigFlag the
// flag, that give ferry the storage config file's path.
const (
	StorageConfigEnv  = "FERRY_STORAGE_CONFIG"
	StorageConfigFlag = "storage-config"
)

// DefaultStorageKey is the entry used when storage.key is not given, as in
// KServe ("default", or "default_<type>" when storage.parameters.type is set).
const DefaultStorageKey = "default"

// Storage types a storage config entry may have. KServe knows s3, hdfs and
// webhdfs; Ferry pulls s3, and gs and https as extensions, and has no HDFS
// client.
var (
	storageTypes       = []string{"s3", "gs", "https", "http"}
	storageBucketTypes = []string{"s3", "gs"}
	storageTypesKServe = []string{"hdfs", "webhdfs"}
)

// ParseStorageConfig reads a storage config in one of two forms: the
// Kubernetes Secret KServe reads (kind: Secret, each entry a JSON string under
// stringData, or base64 under data), so the same file can be applied to a
// cluster; or a plain YAML/JSON object of entries. Every value must be a string.
func ParseStorageConfig(data []byte) (StorageConfig, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%w: storage config: %v", ErrInvalid, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, fmt.Errorf("%w: storage config: expected an object of entries or a Secret: %v", ErrInvalid, err)
	}
	var kind string
	if k, ok := top["kind"]; ok {
		_ = json.Unmarshal(k, &kind)
	}
	if kind != "Secret" {
		cfg := make(StorageConfig, len(top))
		for _, key := range sortedMapKeys(top) {
			entry, err := parseStorageEntry(key, top[key])
			if err != nil {
				return nil, err
			}
			cfg[key] = entry
		}
		return cfg, nil
	}
	var secret struct {
		StringData map[string]string `json:"stringData"`
		Data       map[string]string `json:"data"`
	}
	if err := json.Unmarshal(js, &secret); err != nil {
		return nil, fmt.Errorf("%w: storage config Secret: %v", ErrInvalid, err)
	}
	cfg := make(StorageConfig, len(secret.Data)+len(secret.StringData))
	for _, key := range sortedMapKeys(secret.Data) {
		raw, err := base64.StdEncoding.DecodeString(secret.Data[key])
		if err != nil {
			return nil, fmt.Errorf("%w: storage config data.%s: not base64: %v", ErrInvalid, key, err)
		}
		if cfg[key], err = parseStorageEntry("data."+key, raw); err != nil {
			return nil, err
		}
	}
	for _, key := range sortedMapKeys(secret.StringData) { // stringData wins, as in Kubernetes
		entry, err := parseStorageEntry("stringData."+key, []byte(secret.StringData[key]))
		if err != nil {
			return nil, err
		}
		cfg[key] = entry
	}
	return cfg, nil
}

func parseStorageEntry(path string, raw []byte) (map[string]string, error) {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("%w: storage config %s: expected a JSON object of strings: %v", ErrInvalid, path, err)
	}
	entry := make(map[string]string, len(fields))
	for _, k := range sortedMapKeys(fields) {
		s, ok := fields[k].(string)
		if !ok {
			return nil, fmt.Errorf("%w: storage config %s.%s: expected a string (quote it), got %s", ErrInvalid, path, k, jsonKind(fields[k]))
		}
		entry[k] = s
	}
	return entry, nil
}

// LoadStorageConfig reads and parses the storage config file at path.
func LoadStorageConfig(path string) (StorageConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("storage config: %w", err)
	}
	cfg, err := ParseStorageConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// StorageTarget is where a model is and how to reach it.
type StorageTarget struct {
	// URI is the model's storage URI, e.g. s3://bucket/path.
	URI string
	// Key is the storage config entry used, or "" when none applied.
	Key string
	// Values are the entry's values with storage.parameters applied on top;
	// they may hold secrets.
	Values map[string]string
}

// String names the URI and key only, so that a target can be logged.
func (t StorageTarget) String() string {
	if t.Key == "" {
		return t.URI
	}
	return t.URI + " (storage key " + t.Key + ")"
}

// s3Env maps entry values to the variables KServe's storage initializer
// sets from them, which Ferry's puller reads too.
var s3Env = [][2]string{
	{"endpoint_url", "AWS_ENDPOINT_URL"},
	{"access_key_id", "AWS_ACCESS_KEY_ID"},
	{"secret_access_key", "AWS_SECRET_ACCESS_KEY"},
	{"region", "AWS_DEFAULT_REGION"},
	{"ca_bundle", "AWS_CA_BUNDLE"},
	{"verify_ssl", "S3_VERIFY_SSL"},
	{"anonymous", "awsAnonymousCredential"},
}

// Env returns the environment a puller needs for the target, as
// NAME=value strings: for s3, the AWS_* variables KServe's storage
// initializer derives from the entry. It holds secrets.
func (t StorageTarget) Env() []string {
	if !strings.HasPrefix(t.URI, "s3://") {
		return nil
	}
	var env []string
	for _, m := range s3Env {
		if v, ok := t.Values[m[0]]; ok {
			env = append(env, m[1]+"="+v)
		}
	}
	return env
}

// ErrStorageConfig marks a storage spec that the storage config cannot
// resolve; the message names the field or key to fix.
var ErrStorageConfig = errors.New("cannot resolve model storage")

// Resolve turns a model spec's storage field (and its storageUri, which
// wins when given) into a StorageTarget, following KServe's storage
// initializer: the entry is storage.key, or "default" ("default_<type>" when
// storage.parameters.type is set); storage.parameters override its values;
// the URI is <type>://<bucket>/<path> for s3 and gs, <type>://<path>
// otherwise. base is the field path of the model spec, used in errors
// (spec.predictor.sklearn).
func (c StorageConfig) Resolve(base string, spec *StorageSpec, storageURI string) (StorageTarget, error) {
	if spec == nil {
		return StorageTarget{URI: storageURI}, nil
	}
	stype, bucket := spec.Parameters["type"], spec.Parameters["bucket"]
	key, explicit := DefaultStorageKey, false
	if spec.StorageKey != nil && *spec.StorageKey != "" {
		key, explicit = *spec.StorageKey, true
	} else if stype != "" {
		key = DefaultStorageKey + "_" + stype
	}
	entry, found := c[key]
	switch {
	case !found && explicit && c == nil:
		return StorageTarget{}, fmt.Errorf("%w: %s.storage.key: %q needs a storage config file; give it with --%s or %s", ErrStorageConfig, base, key, StorageConfigFlag, StorageConfigEnv)
	case !found && explicit:
		return StorageTarget{}, fmt.Errorf("%w: %s.storage.key: %q is not an entry of the storage config file (entries: %s)", ErrStorageConfig, base, key, strings.Join(sortedMapKeys(c), ", "))
	case !found:
		key = ""
	}
	values := make(map[string]string, len(entry)+len(spec.Parameters))
	for k, v := range entry {
		values[k] = v
	}
	for k, v := range spec.Parameters {
		values[k] = v
	}
	if stype == "" {
		stype = entry["type"]
	}
	if bucket == "" {
		bucket = entry["bucket"]
	}
	if err := checkStorageType(base, stype); err != nil {
		return StorageTarget{}, err
	}
	t := StorageTarget{URI: storageURI, Key: key, Values: values}
	if t.URI != "" {
		return t, nil
	}
	if spec.Path == nil || strings.Trim(*spec.Path, "/") == "" {
		return StorageTarget{}, fmt.Errorf("%w: %s.storage.path: required when storageUri is not given", ErrStorageConfig, base)
	}
	path := strings.TrimPrefix(*spec.Path, "/")
	if slices.Contains(storageBucketTypes, stype) {
		if bucket == "" {
			return StorageTarget{}, fmt.Errorf("%w: %s.storage: type %s needs a bucket; set bucket in the storage config entry %q or in storage.parameters", ErrStorageConfig, base, stype, key)
		}
		t.URI = stype + "://" + bucket + "/" + path
	} else {
		t.URI = stype + "://" + path
	}
	return t, nil
}

func checkStorageType(base, stype string) error {
	switch {
	case stype == "":
		return fmt.Errorf("%w: %s.storage: no storage type; set type in the storage config entry or storage.parameters.type (one of %s)", ErrStorageConfig, base, strings.Join(storageTypes, ", "))
	case slices.Contains(storageTypesKServe, stype):
		return fmt.Errorf("%w: %s.storage: type %s is not supported by ferry (no HDFS client); supported: %s", ErrStorageConfig, base, stype, strings.Join(storageTypes, ", "))
	case !slices.Contains(storageTypes, stype):
		return fmt.Errorf("%w: %s.storage: unsupported type %q; supported: %s", ErrStorageConfig, base, stype, strings.Join(storageTypes, ", "))
	}
	return nil
}

// validateStorage checks what can be checked without the storage config:
// with storageUri, its scheme must be one the storage config can hold
// credentials for; a type in parameters must be supported; without
// storageUri, a path is required.
func validateStorage(errs *fieldErrors, base string, s *StorageSpec, storageURI string) {
	if s == nil {
		return
	}
	p := base + ".storage"
	if storageURI != "" {
		scheme, _, _ := strings.Cut(storageURI, "://")
		if !slices.Contains(storageTypes, scheme) {
			errs.add(base+".storageUri", "with storage, the URI scheme must be one of %s, got %q", strings.Join(storageTypes, ", "), storageURI)
		}
	} else if s.Path == nil || strings.Trim(*s.Path, "/") == "" {
		errs.add(p+".path", "required when storageUri is not given")
	}
	if t, ok := s.Parameters["type"]; ok {
		if err := checkStorageType(base, t); err != nil {
			errs.add(p+".parameters.type", "unsupported value %q; supported: %s", t, strings.Join(storageTypes, ", "))
		}
	}
}

// StorageSpecs returns the storage spec and storageUri of each component
// implementation that has a storage field, keyed by the field path of the
// implementation (spec.predictor.sklearn), for resolving with a
// StorageConfig before the components are started.
func (s *InferenceService) StorageSpecs() map[string]StorageRef {
	out := make(map[string]StorageRef)
	if impls := s.Spec.Predictor.implementations(); len(impls) == 1 && impls[0].ext != nil && impls[0].ext.Storage != nil {
		out["spec.predictor."+impls[0].key] = StorageRef{Component: ComponentPredictor, Spec: impls[0].ext.Storage, StorageURI: impls[0].ext.StorageURI}
	}
	if e := s.Spec.Explainer; e != nil {
		if impls := e.implementations(); len(impls) == 1 && impls[0].explainer != nil && impls[0].explainer.Storage != nil {
			x := impls[0].explainer
			out["spec.explainer."+impls[0].key] = StorageRef{Component: ComponentExplainer, Spec: x.Storage, StorageURI: x.StorageURI}
		}
	}
	return out
}

// StorageRef is one component's storage field and storageUri.
type StorageRef struct {
	Component  string
	Spec       *StorageSpec
	StorageURI string
}
