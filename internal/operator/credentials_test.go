package operator_test

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	"github.com/ferryserve/ferry/internal/storage"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Values a test secret holds: none may appear in what the operator builds.
const (
	secretKeyID  = "AKIAFERRYTESTKEYID01"
	secretKey    = "ferry/secret+access+key/xyz"
	secretToken  = "ferry-session-token-42"
	secretGCSKey = `{"type": "service_account", "private_key": "ferry-gcs-private-key"}`
	secretAzure  = "ferry-azure-account-key=="
)

func secret(name string, annotations map[string]string, keys ...string) corev1.Secret {
	s := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations}, Data: map[string][]byte{}}
	for _, k := range keys {
		s.Data[k] = []byte(secretValue(k))
	}
	return s
}

func secretValue(key string) string {
	switch key {
	case "AWS_ACCESS_KEY_ID":
		return secretKeyID
	case "AWS_SECRET_ACCESS_KEY":
		return secretKey
	case "AWS_SESSION_TOKEN":
		return secretToken
	case "gcloud-application-credentials.json":
		return secretGCSKey
	case "AZURE_STORAGE_ACCESS_KEY":
		return secretAzure
	}
	return "value-of-" + key
}

// ref is an environment variable taken from a secret's key, as KServe's
// credential builder writes it.
func ref(env, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
}

func val(env, v string) corev1.EnvVar { return corev1.EnvVar{Name: env, Value: v} }

// gcsVolume, gcsMount and gcsEnv are what KServe's GCS credential builder
// adds for a secret holding gcloud-application-credentials.json.
func gcsVolume(secret string) corev1.Volume {
	return corev1.Volume{Name: "user-gcp-sa", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
}

var (
	gcsMount = corev1.VolumeMount{Name: "user-gcp-sa", MountPath: "/var/secrets", ReadOnly: true}
	gcsEnv   = val("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/gcloud-application-credentials.json")
)

func TestCredentialsFromSecrets(t *testing.T) {
	s3Keys := []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
	s3Refs := func(secret string) []corev1.EnvVar {
		return []corev1.EnvVar{ref("AWS_ACCESS_KEY_ID", secret, "AWS_ACCESS_KEY_ID"), ref("AWS_SECRET_ACCESS_KEY", secret, "AWS_SECRET_ACCESS_KEY")}
	}
	kserve := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m["serving.kserve.io/"+kv[i]] = kv[i+1]
		}
		return m
	}
	stringData := secret("string-data", nil)
	stringData.StringData = map[string]string{"AWS_ACCESS_KEY_ID": secretKeyID, "AWS_SECRET_ACCESS_KEY": secretKey}

	for _, tc := range []struct {
		name    string
		secrets []corev1.Secret
		want    *operator.StorageCredentials // nil: none
	}{
		{name: "nothing"},
		{name: "unrelated secrets", secrets: []corev1.Secret{
			secret("pull", nil, ".dockerconfigjson"),
			secret("token", map[string]string{"kubernetes.io/service-account.name": "default"}, "token", "ca.crt"),
		}},
		{name: "s3", secrets: []corev1.Secret{secret("s3", nil, s3Keys...)},
			want: &operator.StorageCredentials{Env: s3Refs("s3")}},
		{name: "s3 from stringData", secrets: []corev1.Secret{stringData},
			want: &operator.StorageCredentials{Env: s3Refs("string-data")}},
		{name: "s3 half a key pair", secrets: []corev1.Secret{secret("s3", kserve("s3-endpoint", "minio:9000"), "AWS_ACCESS_KEY_ID")}},
		{name: "s3 annotations", secrets: []corev1.Secret{secret("s3", kserve(
			"s3-endpoint", "minio.minio:9000", "s3-usehttps", "0", "s3-region", "eu-west-1", "s3-verifyssl", "0",
			"s3-usevirtualbucket", "true", "s3-useanoncredential", "false", "s3-cabundle", "/etc/ssl/minio.pem",
		), append(s3Keys, "AWS_SESSION_TOKEN")...)},
			want: &operator.StorageCredentials{Env: append(s3Refs("s3"),
				ref("AWS_SESSION_TOKEN", "s3", "AWS_SESSION_TOKEN"),
				val("S3_ENDPOINT", "minio.minio:9000"), val("S3_USE_HTTPS", "0"), val("AWS_REGION", "eu-west-1"),
				val("S3_VERIFY_SSL", "0"), val("S3_USER_VIRTUAL_BUCKET", "true"), val("awsAnonymousCredential", "false"),
				val("AWS_CA_BUNDLE", "/etc/ssl/minio.pem"))}},
		{name: "s3 KFServing annotations", secrets: []corev1.Secret{secret("s3", map[string]string{
			"serving.kubeflow.org/s3-endpoint": "s3.example.com", "serving.kubeflow.org/s3-usehttps": "1",
		}, s3Keys...)},
			want: &operator.StorageCredentials{Env: append(s3Refs("s3"), val("S3_ENDPOINT", "s3.example.com"), val("S3_USE_HTTPS", "1"))}},
		{name: "s3 KServe annotation over KFServing's", secrets: []corev1.Secret{secret("s3", map[string]string{
			"serving.kubeflow.org/s3-endpoint": "old.example.com", "serving.kserve.io/s3-endpoint": "new.example.com",
		}, s3Keys...)},
			want: &operator.StorageCredentials{Env: append(s3Refs("s3"), val("S3_ENDPOINT", "new.example.com"))}},
		{name: "gcs", secrets: []corev1.Secret{secret("gcs", nil, "gcloud-application-credentials.json")},
			want: &operator.StorageCredentials{Env: []corev1.EnvVar{gcsEnv}, Volumes: []corev1.Volume{gcsVolume("gcs")}, Mounts: []corev1.VolumeMount{gcsMount}}},
		{name: "azure", secrets: []corev1.Secret{secret("az", nil, "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_ACCOUNT_NAME")},
			want: &operator.StorageCredentials{Env: []corev1.EnvVar{
				ref("AZURE_STORAGE_ACCOUNT_NAME", "az", "AZURE_STORAGE_ACCOUNT_NAME"), ref("AZURE_STORAGE_ACCESS_KEY", "az", "AZURE_STORAGE_ACCESS_KEY")}}},
		{name: "azure sas", secrets: []corev1.Secret{secret("az", nil, "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_BLOB_ENDPOINT")},
			want: &operator.StorageCredentials{Env: []corev1.EnvVar{
				ref("AZURE_STORAGE_SAS_TOKEN", "az", "AZURE_STORAGE_SAS_TOKEN"), ref("AZURE_STORAGE_BLOB_ENDPOINT", "az", "AZURE_STORAGE_BLOB_ENDPOINT")}}},
		{name: "first s3 secret wins", secrets: []corev1.Secret{
			secret("first", kserve("s3-endpoint", "first:9000"), s3Keys...),
			secret("second", kserve("s3-endpoint", "second:9000", "s3-region", "us-east-2"), append(s3Keys, "AWS_SESSION_TOKEN")...),
		}, want: &operator.StorageCredentials{Env: append(s3Refs("first"), val("S3_ENDPOINT", "first:9000"))}},
		{name: "first of each kind", secrets: []corev1.Secret{
			secret("pull", nil, ".dockerconfigjson"),
			secret("gcs-a", nil, "gcloud-application-credentials.json"),
			secret("s3-a", nil, s3Keys...),
			secret("gcs-b", nil, "gcloud-application-credentials.json"),
			secret("az-a", nil, "AZURE_STORAGE_ACCOUNT_NAME"),
			secret("s3-b", nil, s3Keys...),
			secret("az-b", nil, "AZURE_STORAGE_ACCESS_KEY"),
		}, want: &operator.StorageCredentials{
			Env:     append([]corev1.EnvVar{gcsEnv}, append(s3Refs("s3-a"), ref("AZURE_STORAGE_ACCOUNT_NAME", "az-a", "AZURE_STORAGE_ACCOUNT_NAME"))...),
			Volumes: []corev1.Volume{gcsVolume("gcs-a")}, Mounts: []corev1.VolumeMount{gcsMount}}},
		{name: "one secret of every kind", secrets: []corev1.Secret{
			secret("all", kserve("s3-region", "ap-south-1"), "gcloud-application-credentials.json", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN"),
		}, want: &operator.StorageCredentials{
			Env:     append(s3Refs("all"), val("AWS_REGION", "ap-south-1"), gcsEnv, ref("AZURE_STORAGE_SAS_TOKEN", "all", "AZURE_STORAGE_SAS_TOKEN")),
			Volumes: []corev1.Volume{gcsVolume("all")}, Mounts: []corev1.VolumeMount{gcsMount}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := operator.CredentialsFromSecrets(tc.secrets)
			if !jsonEqual(got, tc.want) {
				t.Fatalf("credentials\n  %s\nwant\n  %s", jsonOf(got), jsonOf(tc.want))
			}
			if leaked := secretValues(tc.secrets, jsonOf(got)); len(leaked) > 0 {
				t.Errorf("credentials hold secret values %q", leaked)
			}
		})
	}
}

// TestCredentialsReachStorage resolves the credentials' secret references
// the way the kubelet does and hands the environment to internal/storage,
// which `ferry pull` configures itself from: every variable the operator
// writes must be one the storage initializer reads.
func TestCredentialsReachStorage(t *testing.T) {
	secrets := []corev1.Secret{
		secret("s3", map[string]string{
			"serving.kserve.io/s3-endpoint": "minio.minio:9000", "serving.kserve.io/s3-usehttps": "0",
			"serving.kserve.io/s3-region": "eu-west-1", "serving.kserve.io/s3-verifyssl": "0",
			"serving.kserve.io/s3-usevirtualbucket": "true", "serving.kserve.io/s3-cabundle": "/etc/ssl/minio.pem",
		}, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
		secret("gcs", nil, "gcloud-application-credentials.json"),
		secret("az", nil, "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_BLOB_ENDPOINT"),
	}
	cr := operator.CredentialsFromSecrets(secrets)
	if cr == nil {
		t.Fatal("no credentials")
	}
	env := map[string]string{}
	for _, e := range cr.Env {
		v := e.Value
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
			i := slices.IndexFunc(secrets, func(s corev1.Secret) bool { return s.Name == r.SecretKeyRef.Name })
			if i < 0 {
				t.Fatalf("%s refers to secret %q, not one of the account's", e.Name, r.SecretKeyRef.Name)
			}
			b, ok := secrets[i].Data[r.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("%s refers to key %q that secret %s lacks", e.Name, r.SecretKeyRef.Key, r.SecretKeyRef.Name)
			}
			v = string(b)
		}
		env[e.Name] = v
	}
	var c storage.Config
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	s3 := c.S3
	if s3.AccessKeyID != secretKeyID || s3.SecretAccessKey != secretKey || s3.SessionToken != secretToken ||
		s3.Endpoint != "minio.minio:9000" || !s3.DisableHTTPS || !s3.SkipVerify || s3.Region != "eu-west-1" ||
		!s3.VirtualHost || s3.CABundle != "/etc/ssl/minio.pem" {
		t.Errorf("S3 config = %+v", s3)
	}
	if c.GCS.CredentialsFile != "/var/secrets/gcloud-application-credentials.json" {
		t.Errorf("GCS credentials file = %q", c.GCS.CredentialsFile)
	}
	if a := c.Azure; a.Account != "value-of-AZURE_STORAGE_ACCOUNT_NAME" || a.AccountKey != secretAzure ||
		a.SASToken != "value-of-AZURE_STORAGE_SAS_TOKEN" || a.Endpoint != "value-of-AZURE_STORAGE_BLOB_ENDPOINT" {
		t.Errorf("Azure config = %+v", a)
	}
	// The key file is where the secret volume puts it.
	if len(cr.Mounts) != 1 || len(cr.Volumes) != 1 || cr.Volumes[0].Name != cr.Mounts[0].Name ||
		cr.Mounts[0].MountPath+"/gcloud-application-credentials.json" != c.GCS.CredentialsFile {
		t.Errorf("volumes %+v mounts %+v do not put the key file at %s", cr.Volumes, cr.Mounts, c.GCS.CredentialsFile)
	}
}

// TestCredentialsOnCluster runs the operator against a real API server:
// a service account listing an S3 secret gives the storage initializer of
// an InferenceService that runs as it the secret's keys by reference and
// its annotations as values; an InferenceService without an account gets
// the namespace's default account's (here a GCS key file). No value of a
// secret appears in the Deployments, and the serving container gets no
// credentials.
func TestCredentialsOnCluster(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}})
	cl := newClient(t, cluster)
	ctx := t.Context()

	s3 := secret("models-s3", map[string]string{
		"serving.kserve.io/s3-endpoint": "minio.minio:9000", "serving.kserve.io/s3-usehttps": "0", "serving.kserve.io/s3-region": "eu-west-1",
	}, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
	gcs := secret("default-gcs", nil, "gcloud-application-credentials.json")
	pull := secret("registry", nil, ".dockerconfigjson")
	for _, o := range []client.Object{
		&s3, &gcs, &pull,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "models", Namespace: ns},
			Secrets: []corev1.ObjectReference{{Name: "registry"}, {Name: "missing"}, {Name: "models-s3"}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
			Secrets: []corev1.ObjectReference{{Name: "default-gcs"}}},
	} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	startOperator(t, cluster, nil)

	for _, doc := range []string{`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: creds-s3, namespace: default}
spec:
  predictor:
    serviceAccountName: models
    sklearn: {storageUri: "s3://models/iris"}
`, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: creds-default, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://models/iris"}
`} {
		if err := cl.Create(ctx, loadYAML(t, doc)); err != nil {
			t.Fatal(err)
		}
	}

	d := waitDeployment(t, cl, "creds-s3-predictor-00001")
	ps := d.Spec.Template.Spec
	if ps.ServiceAccountName != "models" {
		t.Errorf("serviceAccountName = %q, want models", ps.ServiceAccountName)
	}
	init := initializer(t, d)
	want := []corev1.EnvVar{
		ref("AWS_ACCESS_KEY_ID", "models-s3", "AWS_ACCESS_KEY_ID"), ref("AWS_SECRET_ACCESS_KEY", "models-s3", "AWS_SECRET_ACCESS_KEY"),
		val("S3_ENDPOINT", "minio.minio:9000"), val("S3_USE_HTTPS", "0"), val("AWS_REGION", "eu-west-1"),
	}
	if !jsonEqual(init.Env, want) {
		t.Errorf("storage initializer env\n  %s\nwant\n  %s", jsonOf(init.Env), jsonOf(want))
	}
	if len(init.Args) < 3 || init.Args[0] != "pull" || init.Args[1] != "s3://models/iris" {
		t.Errorf("storage initializer args %q, want pull s3://models/iris", init.Args)
	}
	checkNoCredentials(t, d)

	d = waitDeployment(t, cl, "creds-default-predictor-00001")
	init = initializer(t, d)
	if !jsonEqual(init.Env, []corev1.EnvVar{gcsEnv}) || !slices.ContainsFunc(init.VolumeMounts, func(m corev1.VolumeMount) bool { return jsonEqual(m, gcsMount) }) {
		t.Errorf("storage initializer env %s mounts %+v, want the default account's GCS key file", jsonOf(init.Env), init.VolumeMounts)
	}
	// (The API server adds the secret volume's defaultMode.)
	if i := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "user-gcp-sa" }); i < 0 ||
		d.Spec.Template.Spec.Volumes[i].Secret == nil || d.Spec.Template.Spec.Volumes[i].Secret.SecretName != "default-gcs" {
		t.Errorf("volumes = %s, want the default-gcs secret as user-gcp-sa", jsonOf(d.Spec.Template.Spec.Volumes))
	}
	checkNoCredentials(t, d)

	// What the API server holds, not only what the operator sent.
	var deps appsv1.DeploymentList
	if err := cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{operator.LabelManagedBy: "ferry-operator"}); err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 2 {
		t.Errorf("%d Deployments, want 2", len(deps.Items))
	}
	if leaked := secretValues([]corev1.Secret{s3, gcs, pull}, jsonOf(deps)); len(leaked) > 0 {
		t.Errorf("Deployments hold secret values %q", leaked)
	}
}

func initializer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == operator.StorageInitializerName {
			return c
		}
	}
	t.Fatalf("%s has no %s init container: %+v", d.Name, operator.StorageInitializerName, d.Spec.Template.Spec.InitContainers)
	return corev1.Container{}
}

// checkNoCredentials fails when a serving container of d gets storage
// credentials: only the storage initializer pulls.
func checkNoCredentials(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "AWS_") || strings.HasPrefix(e.Name, "S3_") || strings.HasPrefix(e.Name, "GOOGLE_") || strings.HasPrefix(e.Name, "AZURE_") {
				t.Errorf("%s: container %s has %s", d.Name, c.Name, e.Name)
			}
		}
		if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "user-gcp-sa" }) {
			t.Errorf("%s: container %s mounts the GCS key", d.Name, c.Name)
		}
	}
}

// secretValues returns the values of secrets' keys (raw or base64, as
// the API carries Data) that occur in s.
func secretValues(secrets []corev1.Secret, s string) []string {
	var found []string
	for _, sec := range secrets {
		for _, v := range sec.Data {
			for _, form := range []string{string(v), base64.StdEncoding.EncodeToString(v)} {
				if strings.Contains(s, form) {
					found = append(found, form)
				}
			}
		}
		for _, v := range sec.StringData {
			if strings.Contains(s, v) {
				found = append(found, v)
			}
		}
	}
	return found
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func jsonEqual(a, b any) bool { return jsonOf(a) == jsonOf(b) }
