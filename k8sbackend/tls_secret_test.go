package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testCertificateGUID = "c1c1c1c1-0000-4000-8000-00000000000c"

func testTLSCertificate() TLSCertificateSpec {
	return TLSCertificateSpec{
		Installation:  "acme",
		GUID:          testCertificateGUID,
		Domain:        "apps.example.com",
		ChainPEM:      []byte("-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n"),
		PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"),
	}
}

func TestMakeTLSSecret(t *testing.T) {
	withCA := testTLSCertificate()
	withCA.CAPEM = []byte("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n")
	defaultInstallation := testTLSCertificate()
	defaultInstallation.Installation = ""

	for _, tc := range []struct {
		name       string
		cert       TLSCertificateSpec
		wantLabels map[string]string
		wantData   map[string][]byte
	}{
		{
			name: "system roots",
			cert: testTLSCertificate(),
			wantLabels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: "acme",
				LabelComponent: ComponentTLS, LabelCertificateGUID: testCertificateGUID},
			wantData: map[string][]byte{"tls.crt": testTLSCertificate().ChainPEM, "tls.key": testTLSCertificate().PrivateKeyPEM},
		},
		{
			name: "uploaded CA",
			cert: withCA,
			wantLabels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: "acme",
				LabelComponent: ComponentTLS, LabelCertificateGUID: testCertificateGUID},
			wantData: map[string][]byte{"tls.crt": withCA.ChainPEM, "tls.key": withCA.PrivateKeyPEM, "ca.crt": withCA.CAPEM},
		},
		{
			name: "default installation",
			cert: defaultInstallation,
			wantLabels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation,
				LabelComponent: ComponentTLS, LabelCertificateGUID: testCertificateGUID},
			wantData: map[string][]byte{"tls.crt": testTLSCertificate().ChainPEM, "tls.key": testTLSCertificate().PrivateKeyPEM},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MakeTLSSecret(tc.cert, "ferry-system")

			want := &corev1.Secret{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{
					Name:      "tls-" + testCertificateGUID,
					Namespace: "ferry-system",
					Labels:    tc.wantLabels,
					Annotations: map[string]string{
						AnnotationDomain:   "apps.example.com",
						AnnotationSpecHash: got.Annotations[AnnotationSpecHash],
					},
				},
				Type: corev1.SecretTypeTLS,
				Data: tc.wantData,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("MakeTLSSecret (-want +got):\n%s", diff)
			}
			if len(got.Annotations[AnnotationSpecHash]) != 16 {
				t.Errorf("spec hash = %q, want 16 hex digits", got.Annotations[AnnotationSpecHash])
			}
		})
	}
}

func TestTLSSecretSpecHash(t *testing.T) {
	hash := func(change func(*TLSCertificateSpec)) string {
		cert := testTLSCertificate()
		change(&cert)
		return MakeTLSSecret(cert, "ferry-system").Annotations[AnnotationSpecHash]
	}
	base := hash(func(*TLSCertificateSpec) {})

	for _, tc := range []struct {
		name   string
		change func(*TLSCertificateSpec)
	}{
		{"new chain", func(c *TLSCertificateSpec) { c.ChainPEM = []byte("renewed") }},
		{"CA added", func(c *TLSCertificateSpec) { c.CAPEM = []byte("ca") }},
		{"other domain", func(c *TLSCertificateSpec) { c.Domain = "shop.example.com" }},
		{"other installation", func(c *TLSCertificateSpec) { c.Installation = "other" }},
	} {
		if hash(tc.change) == base {
			t.Errorf("%s: spec hash did not change", tc.name)
		}
	}

	// The hash is visible to anyone who can read the annotation, so it
	// must not depend on the key.
	if got := hash(func(c *TLSCertificateSpec) { c.PrivateKeyPEM = []byte("another key") }); got != base {
		t.Errorf("spec hash depends on the private key: %s != %s", got, base)
	}
}
