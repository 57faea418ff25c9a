package k8sbackend

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations of the TLS Secrets of domain certificates, which
// are a Ferry extension.
const (
	// ComponentTLS is the LabelComponent value of TLS Secrets.
	ComponentTLS = "tls"
	// LabelCertificateGUID is the guid of the certificate a Secret holds.
	LabelCertificateGUID = "ferry.cloudfoundry.org/certificate_guid"
	// AnnotationDomain is the domain a Secret's certificate is for.
	AnnotationDomain = "ferry.cloudfoundry.org/domain"
	// TLSCAKey is the key of a TLS Secret's CA certificate, the name
	// cert-manager and ingress controllers use.
	TLSCAKey = "ca.crt"
)

// TLSSecretName is the name of the Secret with a certificate's chain and
// key. It derives from the certificate's guid, which a rotation keeps, so
// the listeners that reference the Secret never change.
func TLSSecretName(certificateGUID string) string { return "tls-" + certificateGUID }

// TLSCertificateSpec is a domain's certificate as its Secret needs it. It
// is independent of the store, so the reconciler fills it from whatever
// reads certificates and opens their keys.
type TLSCertificateSpec struct {
	// Installation is the installation that owns the Secret; "" means
	// DefaultInstallation.
	Installation string
	GUID         string
	Domain       string
	// ChainPEM is the certificate chain, leaf first.
	ChainPEM []byte
	// PrivateKeyPEM is the leaf's private key in plain text.
	PrivateKeyPEM []byte
	// CAPEM is the CA the chain was verified against; nil for the system
	// roots.
	CAPEM []byte
}

// MakeTLSSecret returns the kubernetes.io/tls Secret, in namespace, that
// the HTTPS listeners of cert's domain reference: tls.crt holds the chain,
// tls.key the key and, when the certificate has one, ca.crt its CA.
//
// The spec hash leaves out the key, because the hash is stored in plain
// sight in an annotation. A key change is still detected: the key must
// match the leaf certificate, so a new key always comes with a new chain.
func MakeTLSSecret(cert TLSCertificateSpec, namespace string) *corev1.Secret {
	labels := ownerLabels(cert.Installation, ComponentTLS)
	labels[LabelCertificateGUID] = cert.GUID

	public := map[string]string{corev1.TLSCertKey: string(cert.ChainPEM)}
	data := map[string][]byte{
		corev1.TLSCertKey:       cert.ChainPEM,
		corev1.TLSPrivateKeyKey: cert.PrivateKeyPEM,
	}
	if len(cert.CAPEM) > 0 {
		public[TLSCAKey] = string(cert.CAPEM)
		data[TLSCAKey] = cert.CAPEM
	}

	secret := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        TLSSecretName(cert.GUID),
			Namespace:   namespace,
			Labels:      labels,
			Annotations: map[string]string{AnnotationDomain: cert.Domain},
		},
		Type: corev1.SecretTypeTLS,
		Data: data,
	}
	secret.Annotations[AnnotationSpecHash] = specHash(secret.Labels, secret.Annotations, string(secret.Type), public)
	return secret
}
