package k8sbackend

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/tlscert"
)

// TestAPIServerAcceptsTLSSecret creates and then rotates a TLS Secret
// made from a validated upload on a real API server, which checks the
// kubernetes.io/tls type's required keys and warns when they do not parse
// as a key pair.
func TestAPIServerAcceptsTLSSecret(t *testing.T) {
	client := startAPIServer(t)
	ctx := t.Context()
	opts := metav1.CreateOptions{FieldManager: FieldManager}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, opts); err != nil {
		t.Fatalf("namespace: %v", err)
	}

	cert := validatedTLSCertificate(t, "apps.example.com")
	created, err := client.CoreV1().Secrets("ferry-system").Create(ctx, MakeTLSSecret(cert, "ferry-system"), opts)
	if err != nil {
		t.Fatalf("create TLS Secret: %v", err)
	}
	if created.Type != corev1.SecretTypeTLS || len(created.Data) != 3 {
		t.Errorf("stored Secret = type %s with %d keys, want kubernetes.io/tls with 3", created.Type, len(created.Data))
	}

	rotated := MakeTLSSecret(validatedTLSCertificate(t, "apps.example.com"), "ferry-system")
	rotated.ResourceVersion = created.ResourceVersion
	updated, err := client.CoreV1().Secrets("ferry-system").Update(ctx, rotated, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		t.Fatalf("update TLS Secret: %v", err)
	}
	if updated.Annotations[AnnotationSpecHash] == created.Annotations[AnnotationSpecHash] {
		t.Error("rotation kept the spec hash")
	}
}

// validatedTLSCertificate returns a self-signed certificate for domain and
// its hosts, passed through tlscert.Validate as an upload would be, with
// itself as the CA.
func validatedTLSCertificate(t *testing.T, domain string) TLSCertificateSpec {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		DNSNames:              []string{domain, "*." + domain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:                  true,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	validated, err := tlscert.Validate(tlscert.Upload{Domain: domain, Certificate: certPEM, CACertificate: certPEM,
		PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}, tlscert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return TLSCertificateSpec{GUID: testCertificateGUID, Domain: validated.Domain,
		ChainPEM: validated.ChainPEM, PrivateKeyPEM: validated.PrivateKeyPEM, CAPEM: validated.CAPEM}
}
