package operator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StorageCredentials are what a container that pulls models gets from its
// service account's secrets, as KServe's credential builder makes them:
// environment variables that reference the secrets (secretKeyRef: values
// never appear in the pod spec) and the GCS key file mounted.
type StorageCredentials struct {
	Env     []corev1.EnvVar
	Volumes []corev1.Volume
	Mounts  []corev1.VolumeMount
}

// Secret keys and annotations KServe reads.
const (
	s3AccessKeyID     = "AWS_ACCESS_KEY_ID"
	s3SecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	gcsCredentialKey  = "gcloud-application-credentials.json"
	gcsMountPath      = "/var/secrets"
	gcsVolume         = "user-gcp-sa"
)

// s3Annotations maps the secret annotations KServe reads (under
// serving.kserve.io/ or KFServing's serving.kubeflow.org/) to the
// environment variables internal/storage reads.
var s3Annotations = []struct{ annotation, env string }{
	{"s3-endpoint", "S3_ENDPOINT"},
	{"s3-usehttps", "S3_USE_HTTPS"},
	{"s3-region", "AWS_REGION"},
	{"s3-verifyssl", "S3_VERIFY_SSL"},
	{"s3-usevirtualbucket", "S3_USER_VIRTUAL_BUCKET"},
	{"s3-useanoncredential", "awsAnonymousCredential"},
	{"s3-cabundle", "AWS_CA_BUNDLE"},
}

// azureKeys are the secret keys passed through to the environment
// variables of the same name (shared key or SAS; internal/storage does not
// read service principals).
var azureKeys = []string{"AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_BLOB_ENDPOINT"}

// CredentialsFromSecrets builds the credentials from a service account's
// secrets, in the order the account lists them; the first secret that
// holds S3 keys gives the S3 variables, the first with a GCS key file the
// mount, and so on. Only the secrets' key names and annotations are read.
func CredentialsFromSecrets(secrets []corev1.Secret) *StorageCredentials {
	out := &StorageCredentials{}
	has := func(s *corev1.Secret, key string) bool {
		_, ok := s.Data[key]
		if !ok {
			_, ok = s.StringData[key]
		}
		return ok
	}
	ref := func(env, secret, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
	}
	var s3, gcs, azure bool
	for i := range secrets {
		s := &secrets[i]
		if !s3 && has(s, s3AccessKeyID) && has(s, s3SecretAccessKey) {
			s3 = true
			out.Env = append(out.Env, ref(s3AccessKeyID, s.Name, s3AccessKeyID), ref(s3SecretAccessKey, s.Name, s3SecretAccessKey))
			if has(s, "AWS_SESSION_TOKEN") {
				out.Env = append(out.Env, ref("AWS_SESSION_TOKEN", s.Name, "AWS_SESSION_TOKEN"))
			}
			for _, a := range s3Annotations {
				for _, group := range []string{api.GroupKServe, api.GroupKubeflow} {
					if v, ok := s.Annotations[group+"/"+a.annotation]; ok {
						out.Env = append(out.Env, corev1.EnvVar{Name: a.env, Value: v})
						break
					}
				}
			}
		}
		if !gcs && has(s, gcsCredentialKey) {
			gcs = true
			out.Volumes = append(out.Volumes, corev1.Volume{Name: gcsVolume, VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: s.Name}}})
			out.Mounts = append(out.Mounts, corev1.VolumeMount{Name: gcsVolume, MountPath: gcsMountPath, ReadOnly: true})
			out.Env = append(out.Env, corev1.EnvVar{Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: gcsMountPath + "/" + gcsCredentialKey})
		}
		if !azure && slices.ContainsFunc(azureKeys, func(k string) bool { return has(s, k) }) {
			azure = true
			for _, k := range azureKeys {
				if has(s, k) {
					out.Env = append(out.Env, ref(k, s.Name, k))
				}
			}
		}
	}
	if len(out.Env)+len(out.Volumes) == 0 {
		return nil
	}
	return out
}

// storageCredentials reads the service account sa of namespace ns and the
// secrets it lists (only what CredentialsFromSecrets needs, straight from
// the API server: the operator caches no Secrets). A missing account or
// secret gives no credentials from it, as a pod would get none.
func storageCredentials(ctx context.Context, r client.Reader, ns, sa string) (*StorageCredentials, error) {
	if r == nil {
		return nil, nil
	}
	if sa == "" {
		sa = "default"
	}
	var acct corev1.ServiceAccount
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: sa}, &acct); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("service account %s: %w", sa, err)
	}
	var secrets []corev1.Secret
	for _, ref := range acct.Secrets {
		if ref.Name == "" {
			continue
		}
		var s corev1.Secret
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("secret %s of service account %s: %w", ref.Name, sa, err)
		}
		// Keep only what is read: the key names and the annotations.
		keys := map[string][]byte{}
		for k := range s.Data {
			keys[k] = nil
		}
		secrets = append(secrets, corev1.Secret{ObjectMeta: s.ObjectMeta, Data: keys})
	}
	return CredentialsFromSecrets(secrets), nil
}

// podOptions are the options a revision of comp is built with; the
// service account's secrets are read only when the component pulls models
// (a storage initializer, a multi-model server, a built-in explainer).
func (r *Reconciler) podOptions(ctx context.Context, isvc *api.InferenceService, comp string) (PodOptions, error) {
	o := PodOptions{ServeImage: r.ServeImage, Runtimes: r.Runtimes, RuntimesRef: r.RuntimesRef}
	var ps *api.PodSpec
	pulls := false
	switch comp {
	case api.ComponentPredictor:
		ps = &isvc.Spec.Predictor.PodSpec
		_, uri, _, custom := isvc.PredictorFormat()
		pulls = (uri == "" && custom == nil) || (uri != "" && !isLocal(uri) && !strings.HasPrefix(uri, "pvc://"))
	case api.ComponentTransformer:
		ps = &isvc.Spec.Transformer.PodSpec
		uri := storageURIEnv(&ps.Containers[0])
		pulls = uri != "" && !isLocal(uri) && !strings.HasPrefix(uri, "pvc://")
	case api.ComponentExplainer:
		ps = &isvc.Spec.Explainer.PodSpec
		pulls = len(ps.Containers) == 0
		if !pulls {
			uri := storageURIEnv(&ps.Containers[0])
			pulls = uri != "" && !isLocal(uri) && !strings.HasPrefix(uri, "pvc://")
		}
	}
	if !pulls {
		return o, nil
	}
	cr, err := storageCredentials(ctx, r.Reader, isvc.Metadata.Namespace, firstNonEmpty(ps.ServiceAccountName, ps.ServiceAccount))
	if err != nil {
		return o, err
	}
	o.Credentials = cr
	return o, nil
}
