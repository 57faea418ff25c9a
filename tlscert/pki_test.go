package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// testNow is the time the tests validate at. Certificates are valid for
// the whole of 2026 unless a case sets other dates.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	validFrom  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	validUntil = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// certSpec describes a certificate to issue in a test.
type certSpec struct {
	commonName string
	dnsNames   []string
	notBefore  time.Time
	notAfter   time.Time
	isCA       bool
	// usages defaults to serverAuth for leaves.
	usages []x509.ExtKeyUsage
}

var serial int64 = 1000

// issue signs a certificate for pub with spec. A nil parent makes it
// self-signed with signer.
func issue(t testing.TB, spec certSpec, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++

	if spec.notBefore.IsZero() {
		spec.notBefore = validFrom
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = validUntil
	}

	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: spec.commonName, Organization: []string{"Ferry Test"}},
		DNSNames:              spec.dnsNames,
		NotBefore:             spec.notBefore,
		NotAfter:              spec.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  spec.isCA,
	}
	if spec.isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = spec.usages
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
	}
	if parent == nil {
		parent = tmpl
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	rsaKeysOnce sync.Once
	rsaKey2048  *rsa.PrivateKey
	rsaKey1024  *rsa.PrivateKey
)

// rsaKeys generates the RSA keys once per test binary, because RSA key
// generation is slow.
func rsaKeys(t testing.TB) (strong, weak *rsa.PrivateKey) {
	t.Helper()
	rsaKeysOnce.Do(func() {
		var err error
		if rsaKey2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
	return rsaKey2048, rsaKey1024
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func pkcs8PEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pkcs1PEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// sec1PEM writes an EC key as `openssl ecparam -genkey` does: an EC
// PARAMETERS block, then the SEC 1 key.
func sec1PEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The DER encoding of the named curve OID of P-256.
	params := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	return append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: params}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
}

// testPKI is a root, an intermediate signed by it, and helpers to issue
// leaves from the intermediate.
type testPKI struct {
	root, intermediate       *x509.Certificate
	rootKey, intermediateKey *ecdsa.PrivateKey
	roots                    *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{rootKey: ecKey(t), intermediateKey: ecKey(t)}
	p.root = issue(t, certSpec{commonName: "Ferry Test Root", isCA: true,
		notBefore: validFrom.AddDate(-5, 0, 0), notAfter: validUntil.AddDate(5, 0, 0)}, p.rootKey.Public(), nil, p.rootKey)
	p.intermediate = issue(t, certSpec{commonName: "Ferry Test Intermediate", isCA: true,
		notBefore: validFrom.AddDate(-1, 0, 0), notAfter: validUntil.AddDate(1, 0, 0)}, p.intermediateKey.Public(), p.root, p.rootKey)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	return p
}

// leaf issues a certificate for key from the intermediate.
func (p *testPKI) leaf(t testing.TB, spec certSpec, key crypto.Signer) *x509.Certificate {
	t.Helper()
	return issue(t, spec, key.Public(), p.intermediate, p.intermediateKey)
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
