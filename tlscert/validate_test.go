package tlscert

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testDomain = "apps.example.com"

func TestValidateAccepts(t *testing.T) {
	pki := newTestPKI(t)
	rsaKey, _ := rsaKeys(t)
	ec, ed := ecKey(t), edKey(t)
	wildcard := certSpec{commonName: "*." + testDomain, dnsNames: []string{"*." + testDomain}}

	selfSignedKey := ecKey(t)
	selfSigned := issue(t, certSpec{dnsNames: []string{testDomain, "*." + testDomain}}, selfSignedKey.Public(), nil, selfSignedKey)

	for _, tc := range []struct {
		name       string
		upload     Upload
		roots      *x509.CertPool
		wantServes []string
	}{
		{
			name: "ECDSA PKCS#8 wildcard with intermediate",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, ec), pki.intermediate),
				PrivateKey: pkcs8PEM(t, ec)},
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "ECDSA SEC 1 with EC PARAMETERS",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, ec), pki.intermediate),
				PrivateKey: sec1PEM(t, ec)},
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "RSA PKCS#1 for the domain and its hosts",
			upload: Upload{Domain: testDomain,
				Certificate: certPEM(pki.leaf(t, certSpec{dnsNames: []string{testDomain, "*." + testDomain}}, rsaKey), pki.intermediate),
				PrivateKey:  pkcs1PEM(rsaKey)},
			wantServes: []string{testDomain, "*." + testDomain},
		},
		{
			name: "RSA PKCS#8",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, rsaKey), pki.intermediate),
				PrivateKey: pkcs8PEM(t, rsaKey)},
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "Ed25519 PKCS#8",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, ed), pki.intermediate),
				PrivateKey: pkcs8PEM(t, ed)},
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "parent wildcard covers the domain",
			upload: Upload{Domain: testDomain,
				Certificate: certPEM(pki.leaf(t, certSpec{dnsNames: []string{"*.example.com"}}, ec), pki.intermediate),
				PrivateKey:  pkcs8PEM(t, ec)},
			wantServes: []string{testDomain},
		},
		{
			name: "exact domain only",
			upload: Upload{Domain: testDomain,
				Certificate: certPEM(pki.leaf(t, certSpec{dnsNames: []string{"other.example.org", testDomain}}, ec), pki.intermediate),
				PrivateKey:  pkcs8PEM(t, ec)},
			wantServes: []string{testDomain},
		},
		{
			name: "upper-case domain with trailing dot",
			upload: Upload{Domain: "Apps.Example.COM.", Certificate: certPEM(pki.leaf(t, wildcard, ec), pki.intermediate),
				PrivateKey: pkcs8PEM(t, ec)},
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "uploaded CA instead of trusted roots",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, ec), pki.intermediate),
				PrivateKey: pkcs8PEM(t, ec), CACertificate: certPEM(pki.root)},
			roots:      x509.NewCertPool(),
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "self-signed with itself as CA",
			upload: Upload{Domain: testDomain, Certificate: certPEM(selfSigned), PrivateKey: pkcs8PEM(t, selfSignedKey),
				CACertificate: certPEM(selfSigned)},
			roots:      x509.NewCertPool(),
			wantServes: []string{testDomain, "*." + testDomain},
		},
		{
			name: "chain that includes the root",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, ec), pki.intermediate, pki.root),
				PrivateKey: pkcs8PEM(t, ec)},
			wantServes: []string{"*." + testDomain},
		},
		{
			name: "text around PEM blocks",
			upload: Upload{Domain: testDomain,
				Certificate: append([]byte("subject=CN = *.apps.example.com\n"), certPEM(pki.leaf(t, wildcard, ec), pki.intermediate)...),
				PrivateKey:  append([]byte("Bag Attributes\n"), pkcs8PEM(t, ec)...)},
			wantServes: []string{"*." + testDomain},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roots := tc.roots
			if roots == nil {
				roots = pki.roots
			}
			got, err := Validate(tc.upload, Options{Now: testNow, Roots: roots})
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got.Domain != testDomain {
				t.Errorf("Domain = %q, want %q", got.Domain, testDomain)
			}
			if diff := cmp.Diff(tc.wantServes, got.Info.Serves); diff != "" {
				t.Errorf("Serves (-want +got):\n%s", diff)
			}
			if block, _ := pem.Decode(got.PrivateKeyPEM); block == nil || block.Type != "PRIVATE KEY" {
				t.Errorf("PrivateKeyPEM is not a PKCS#8 PEM block")
			}
			if strings.Contains(string(got.ChainPEM), "subject=") {
				t.Errorf("ChainPEM keeps text outside PEM blocks")
			}
			if _, err := Validate(Upload{Domain: got.Domain, Certificate: got.ChainPEM, PrivateKey: got.PrivateKeyPEM,
				CACertificate: got.CAPEM}, Options{Now: testNow, Roots: roots}); err != nil {
				t.Errorf("normalised certificate does not validate again: %v", err)
			}
		})
	}
}

func TestValidateInfo(t *testing.T) {
	pki := newTestPKI(t)
	key := ecKey(t)
	leaf := pki.leaf(t, certSpec{commonName: "ignored.example.net", dnsNames: []string{testDomain, "*." + testDomain}}, key)

	got, err := Validate(Upload{Domain: testDomain, Certificate: certPEM(leaf, pki.intermediate), PrivateKey: pkcs8PEM(t, key)},
		Options{Now: testNow, Roots: pki.roots})
	if err != nil {
		t.Fatal(err)
	}

	sum := sha256.Sum256(leaf.Raw)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	want := Info{
		DNSNames:          []string{testDomain, "*." + testDomain},
		Serves:            []string{testDomain, "*." + testDomain},
		Subject:           "CN=ignored.example.net,O=Ferry Test",
		Issuer:            "CN=Ferry Test Intermediate,O=Ferry Test",
		SerialNumber:      fmt.Sprintf("%X", leaf.SerialNumber),
		SHA256Fingerprint: strings.Join(pairs, ":"),
		NotBefore:         validFrom,
		NotAfter:          validUntil,
	}
	if diff := cmp.Diff(want, got.Info); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}
}

func TestValidateRejects(t *testing.T) {
	pki := newTestPKI(t)
	_, weakRSA := rsaKeys(t)
	key, otherKey := ecKey(t), ecKey(t)
	wildcard := certSpec{dnsNames: []string{"*." + testDomain}}
	leaf := pki.leaf(t, wildcard, key)
	goodChain, goodKey := certPEM(leaf, pki.intermediate), pkcs8PEM(t, key)

	expiredIntermediateKey := ecKey(t)
	expiredIntermediate := issue(t, certSpec{commonName: "Expired Intermediate", isCA: true,
		notBefore: validFrom.AddDate(-2, 0, 0), notAfter: validFrom.AddDate(0, 1, 0)}, expiredIntermediateKey.Public(), pki.root, pki.rootKey)
	leafOfExpired := issue(t, wildcard, key.Public(), expiredIntermediate, expiredIntermediateKey)

	otherPKI := newTestPKI(t)
	encryptedKey := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x00}})
	legacyEncryptedKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{0x30, 0x00}})
	truncated := append(certPEM(leaf), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n")...)

	for _, tc := range []struct {
		name        string
		upload      Upload
		wantProblem Problem
		wantField   string
		// wantMessage is a part of the message.
		wantMessage string
	}{
		{
			name:        "empty domain",
			upload:      Upload{Domain: " ", Certificate: goodChain, PrivateKey: goodKey},
			wantProblem: ProblemDomainInvalid, wantField: FieldDomain, wantMessage: "domain must not be empty",
		},
		{
			name:        "wildcard domain",
			upload:      Upload{Domain: "*." + testDomain, Certificate: goodChain, PrivateKey: goodKey},
			wantProblem: ProblemDomainInvalid, wantField: FieldDomain, wantMessage: "give the domain itself, " + testDomain,
		},
		{
			name:        "domain with underscore",
			upload:      Upload{Domain: "my_apps.example.com", Certificate: goodChain, PrivateKey: goodKey},
			wantProblem: ProblemDomainInvalid, wantField: FieldDomain, wantMessage: "not a valid domain name",
		},
		{
			name:        "domain with empty label",
			upload:      Upload{Domain: "apps..example.com", Certificate: goodChain, PrivateKey: goodKey},
			wantProblem: ProblemDomainInvalid, wantField: FieldDomain, wantMessage: "not a valid domain name",
		},
		{
			name:        "garbage certificate",
			upload:      Upload{Domain: testDomain, Certificate: []byte("hello, I am not a certificate"), PrivateKey: goodKey},
			wantProblem: ProblemCertificateInvalid, wantField: FieldCertificate, wantMessage: "certificate is not a PEM certificate",
		},
		{
			name: "PEM block that is not DER",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey,
				Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})},
			wantProblem: ProblemCertificateInvalid, wantField: FieldCertificate, wantMessage: "PEM block 1 is not a valid X.509 certificate",
		},
		{
			name:        "truncated second block",
			upload:      Upload{Domain: testDomain, Certificate: truncated, PrivateKey: goodKey},
			wantProblem: ProblemCertificateInvalid, wantField: FieldCertificate, wantMessage: "certificate PEM block 2 is malformed",
		},
		{
			name:        "private key in the certificate field",
			upload:      Upload{Domain: testDomain, Certificate: append(certPEM(leaf), goodKey...), PrivateKey: goodKey},
			wantProblem: ProblemCertificateInvalid, wantField: FieldCertificate, wantMessage: "contains a private key in PEM block 2",
		},
		{
			name: "other block type in the certificate field",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey,
				Certificate: append(certPEM(leaf), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})...)},
			wantProblem: ProblemCertificateInvalid, wantField: FieldCertificate, wantMessage: `PEM block 2 is a "X509 CRL" block`,
		},
		{
			name:        "garbage private key",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: []byte("not a key")},
			wantProblem: ProblemKeyInvalid, wantField: FieldPrivateKey, wantMessage: "private_key is not a PEM private key",
		},
		{
			name: "private key block that is not DER",
			upload: Upload{Domain: testDomain, Certificate: goodChain,
				PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("garbage")})},
			wantProblem: ProblemKeyInvalid, wantField: FieldPrivateKey, wantMessage: "PEM block 1 is not a valid EC PRIVATE KEY",
		},
		{
			name:        "encrypted PKCS#8 key",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: encryptedKey},
			wantProblem: ProblemKeyInvalid, wantField: FieldPrivateKey, wantMessage: "private_key is encrypted",
		},
		{
			name:        "encrypted PKCS#1 key",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: legacyEncryptedKey},
			wantProblem: ProblemKeyInvalid, wantField: FieldPrivateKey, wantMessage: "private_key is encrypted",
		},
		{
			name:        "two private keys",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: append(pkcs8PEM(t, key), pkcs8PEM(t, otherKey)...)},
			wantProblem: ProblemKeyInvalid, wantField: FieldPrivateKey, wantMessage: "more than one PEM block",
		},
		{
			name:        "certificate in the key field",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: certPEM(leaf)},
			wantProblem: ProblemKeyInvalid, wantField: FieldPrivateKey, wantMessage: "private_key contains a certificate",
		},
		{
			name: "1024-bit RSA key",
			upload: Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, wildcard, weakRSA), pki.intermediate),
				PrivateKey: pkcs1PEM(weakRSA)},
			wantProblem: ProblemKeyUnsupported, wantField: FieldPrivateKey, wantMessage: "1024-bit RSA key: use at least 2048 bits",
		},
		{
			name:        "wrong key",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: pkcs8PEM(t, otherKey)},
			wantProblem: ProblemKeyMismatch, wantField: FieldPrivateKey, wantMessage: "private_key does not match the certificate",
		},
		{
			name:        "intermediate before the leaf",
			upload:      Upload{Domain: testDomain, Certificate: certPEM(pki.intermediate, leaf), PrivateKey: goodKey},
			wantProblem: ProblemKeyMismatch, wantField: FieldCertificate, wantMessage: "belongs to certificate 2 of the chain",
		},
		{
			name: "expired",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey, Certificate: certPEM(pki.leaf(t,
				certSpec{dnsNames: wildcard.dnsNames, notBefore: validFrom.AddDate(-1, 0, 0), notAfter: testNow.Add(-time.Hour)}, key), pki.intermediate)},
			wantProblem: ProblemExpired, wantField: FieldCertificate, wantMessage: "it was valid until 2026-06-01T11:00:00Z",
		},
		{
			name: "not yet valid",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey, Certificate: certPEM(pki.leaf(t,
				certSpec{dnsNames: wildcard.dnsNames, notBefore: testNow.Add(24 * time.Hour)}, key), pki.intermediate)},
			wantProblem: ProblemNotYetValid, wantField: FieldCertificate, wantMessage: "it is valid from 2026-06-02T12:00:00Z",
		},
		{
			name: "wrong domain",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey,
				Certificate: certPEM(pki.leaf(t, certSpec{dnsNames: []string{"*.example.org", "example.org"}}, key), pki.intermediate)},
			wantProblem: ProblemDomainMismatch, wantField: FieldCertificate,
			wantMessage: "not valid for domain apps.example.com: its DNS names (*.example.org, example.org)",
		},
		{
			name: "wildcard two labels up",
			upload: Upload{Domain: "a.apps.example.com", PrivateKey: goodKey,
				Certificate: certPEM(pki.leaf(t, certSpec{dnsNames: []string{"*.example.com"}}, key), pki.intermediate)},
			wantProblem: ProblemDomainMismatch, wantField: FieldCertificate, wantMessage: "not valid for domain a.apps.example.com",
		},
		{
			name: "common name without DNS names",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey,
				Certificate: certPEM(pki.leaf(t, certSpec{commonName: testDomain}, key), pki.intermediate)},
			wantProblem: ProblemDomainMismatch, wantField: FieldCertificate, wantMessage: "its DNS names (none)",
		},
		{
			name:        "missing intermediate",
			upload:      Upload{Domain: testDomain, Certificate: certPEM(leaf), PrivateKey: goodKey},
			wantProblem: ProblemChainUntrusted, wantField: FieldCertificate, wantMessage: "does not lead to a trusted root",
		},
		{
			name: "issuer not trusted",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey,
				Certificate: certPEM(otherPKI.leaf(t, wildcard, key), otherPKI.intermediate)},
			wantProblem: ProblemChainUntrusted, wantField: FieldCertificate, wantMessage: "does not lead to a trusted root",
		},
		{
			name:        "uploaded CA is not the issuer",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: goodKey, CACertificate: certPEM(otherPKI.root)},
			wantProblem: ProblemChainUntrusted, wantField: FieldCertificate, wantMessage: "does not lead to a certificate in ca_certificate",
		},
		{
			name:        "garbage CA",
			upload:      Upload{Domain: testDomain, Certificate: goodChain, PrivateKey: goodKey, CACertificate: []byte("junk")},
			wantProblem: ProblemCAInvalid, wantField: FieldCACertificate, wantMessage: "ca_certificate is not a PEM certificate",
		},
		{
			name:        "expired intermediate",
			upload:      Upload{Domain: testDomain, Certificate: certPEM(leafOfExpired, expiredIntermediate), PrivateKey: goodKey},
			wantProblem: ProblemChainUntrusted, wantField: FieldCertificate, wantMessage: "CN=Expired Intermediate,O=Ferry Test has expired",
		},
		{
			name: "client certificate",
			upload: Upload{Domain: testDomain, PrivateKey: goodKey, Certificate: certPEM(pki.leaf(t,
				certSpec{dnsNames: wildcard.dnsNames, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, key), pki.intermediate)},
			wantProblem: ProblemChainUntrusted, wantField: FieldCertificate, wantMessage: "does not allow TLS server authentication",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Validate(tc.upload, Options{Now: testNow, Roots: pki.roots})
			if err == nil {
				t.Fatalf("Validate accepted the upload: %+v", got.Info)
			}
			var invalidErr *Error
			if !errors.As(err, &invalidErr) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if invalidErr.Problem != tc.wantProblem {
				t.Errorf("Problem = %q, want %q (message %q)", invalidErr.Problem, tc.wantProblem, invalidErr.Message)
			}
			if invalidErr.Field != tc.wantField {
				t.Errorf("Field = %q, want %q", invalidErr.Field, tc.wantField)
			}
			if !strings.Contains(invalidErr.Message, tc.wantMessage) {
				t.Errorf("Message = %q, want it to contain %q", invalidErr.Message, tc.wantMessage)
			}
			if strings.Contains(invalidErr.Message, "PRIVATE KEY-----\n") {
				t.Errorf("Message contains PEM key material: %q", invalidErr.Message)
			}
		})
	}
}

func TestValidateDefaultsToSystemRoots(t *testing.T) {
	pki := newTestPKI(t)
	key := ecKey(t)
	leaf := pki.leaf(t, certSpec{dnsNames: []string{"*." + testDomain}}, key)

	// The test root is in no system pool, so the chain must not verify.
	_, err := Validate(Upload{Domain: testDomain, Certificate: certPEM(leaf, pki.intermediate), PrivateKey: pkcs8PEM(t, key)},
		Options{Now: testNow})
	var invalidErr *Error
	if !errors.As(err, &invalidErr) || invalidErr.Problem != ProblemChainUntrusted {
		t.Fatalf("Validate with system roots = %v, want %s", err, ProblemChainUntrusted)
	}
}

func TestServes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dnsNames []string
		want     []string
	}{
		{"exact domain", []string{"apps.example.com"}, []string{"apps.example.com"}},
		{"hosts wildcard", []string{"*.apps.example.com"}, []string{"*.apps.example.com"}},
		{"both", []string{"*.APPS.example.com", "apps.example.com."}, []string{"apps.example.com", "*.apps.example.com"}},
		{"parent wildcard", []string{"*.example.com"}, []string{"apps.example.com"}},
		{"one host only", []string{"www.apps.example.com"}, []string{}},
		{"wildcard two levels down", []string{"*.www.apps.example.com"}, []string{}},
		{"none", nil, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Serves("apps.example.com", tc.dnsNames)); diff != "" {
				t.Errorf("Serves (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchesHostname(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"apps.example.com", "apps.example.com", true},
		{"Apps.Example.com.", "apps.example.COM", true},
		{"apps.example.com", "example.com", false},
		{"*.example.com", "apps.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.apps.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "*.example.com", false},
		{"*.*.example.com", "a.b.example.com", false},
		{"a*.example.com", "ab.example.com", false},
		{"*", "localhost", false},
		{"*.", "a.", false},
		{"", "", false},
		{"apps.example.com", "", false},
	} {
		if got := MatchesHostname(tc.pattern, tc.host); got != tc.want {
			t.Errorf("MatchesHostname(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}

// TestValidatedCertificateServesTLS serves HTTPS on 127.0.0.1 with a
// validated upload's normalised chain and key, and checks that a client
// that trusts only the root reaches a host on the domain by SNI.
func TestValidatedCertificateServesTLS(t *testing.T) {
	pki := newTestPKI(t)
	rsaKey, _ := rsaKeys(t)
	now := time.Now()
	window := certSpec{dnsNames: []string{"*." + testDomain}, notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)}

	for _, tc := range []struct {
		name string
		key  crypto.Signer
		pem  []byte
	}{
		{"ECDSA", ecKey(t), nil},
		{"RSA PKCS#1", rsaKey, pkcs1PEM(rsaKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyPEM := tc.pem
			if keyPEM == nil {
				keyPEM = pkcs8PEM(t, tc.key)
			}
			validated, err := Validate(Upload{Domain: testDomain, Certificate: certPEM(pki.leaf(t, window, tc.key), pki.intermediate),
				PrivateKey: keyPEM}, Options{Roots: pki.roots})
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(validated.ChainPEM, validated.PrivateKeyPEM)
			if err != nil {
				t.Fatalf("normalised chain and key do not load as a TLS key pair: %v", err)
			}

			server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, r.TLS.ServerName)
			}))
			server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
			server.StartTLS()
			defer server.Close()

			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs:    pki.roots,
				ServerName: "shop." + testDomain,
			}}}
			resp, err := client.Get(server.URL)
			if err != nil {
				t.Fatalf("HTTPS request with SNI shop.%s: %v", testDomain, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != "shop."+testDomain {
				t.Errorf("server saw SNI %q, want shop.%s", body, testDomain)
			}
		})
	}
}
