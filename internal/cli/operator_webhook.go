package cli

import (
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/spf13/pflag"
)

// operatorWebhook holds `ferry operator`'s admission webhook flags.
type operatorWebhook struct {
	port           int
	service        string
	secret         string
	certDir        string
	configurations []string
	conversionCRDs []string
	certLifetime   time.Duration
}

func (o *operatorWebhook) addFlags(f *pflag.FlagSet) {
	f.IntVar(&o.port, "webhook-port", 0, "serve the defaulting and validating admission webhooks over TLS on this port; 0: none")
	f.StringVar(&o.service, "webhook-service", "", "Service (namespace/name) the API server calls the webhooks through; the certificate is made for its DNS names")
	f.StringVar(&o.secret, "webhook-secret", "", "Secret (namespace/name) that keeps the webhook certificate, shared by replicas and restarts")
	f.StringVar(&o.certDir, "webhook-cert-dir", "", "directory that keeps the webhook certificate when no --webhook-secret is given (default: in memory)")
	f.StringSliceVar(&o.configurations, "webhook-configurations", []string{"ferry-mutating-webhook", "ferry-validating-webhook"}, "Mutating- and ValidatingWebhookConfigurations whose caBundle the operator keeps equal to its CA")
	f.StringSliceVar(&o.conversionCRDs, "webhook-conversion-crds", []string{operator.ConversionCRD}, "CustomResourceDefinitions whose conversion webhook (serving.kubeflow.org/v1alpha2 InferenceServices) the operator serves: it keeps their caBundle equal to its CA and their Service equal to --webhook-service; empty for none")
	f.DurationVar(&o.certLifetime, "webhook-cert-lifetime", operator.DefaultCertLifetime, "how long a webhook certificate is valid; renewed with a third left")
}

func (o *operatorWebhook) config() operator.WebhookConfig {
	return operator.WebhookConfig{Port: o.port, Service: o.service, Secret: o.secret, CertDir: o.certDir,
		Configurations: o.configurations, ConversionCRDs: o.conversionCRDs, CertLifetime: o.certLifetime}
}
