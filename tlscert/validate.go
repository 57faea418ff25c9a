// Package tlscert validates the TLS certificates users upload for their
// domains, and seals the private keys for storage at rest. It uses only the
// standard library, so the API, the store and the controller can all use it.
package tlscert

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Upload is one certificate upload for a domain, as the user sent it.
type Upload struct {
	// Domain is the domain name the certificate is for, such as
	// "apps.example.com".
	Domain string
	// Certificate is the PEM chain: the leaf certificate first, then the
	// intermediates that lead to a trusted root.
	Certificate []byte
	// PrivateKey is the PEM private key of the leaf: PKCS#1 or PKCS#8 RSA,
	// SEC 1 or PKCS#8 ECDSA, or PKCS#8 Ed25519, unencrypted.
	PrivateKey []byte
	// CACertificate, when set, holds the PEM root certificates the chain
	// must lead to, in place of the system roots. It suits private CAs
	// and self-signed certificates.
	CACertificate []byte
}

// Options are the environment of a validation.
type Options struct {
	// Now is the time validity is checked at; zero means time.Now().
	Now time.Time
	// Roots are the trusted roots of uploads without a CACertificate; nil
	// means the system roots.
	Roots *x509.CertPool
}

// Certificate is a validated upload in normalised form: PEM text outside
// the blocks is dropped and the private key is PKCS#8.
type Certificate struct {
	// Domain is the upload's domain in lower case, without a trailing dot.
	Domain string
	// ChainPEM holds the uploaded certificates, leaf first.
	ChainPEM []byte
	// CAPEM holds the uploaded CA certificates; it is empty when the
	// chain was verified against the system roots.
	CAPEM []byte
	// PrivateKeyPEM is the private key as a PKCS#8 "PRIVATE KEY" block. It
	// is a secret: never log it or return it through the API.
	PrivateKeyPEM []byte
	Info          Info
}

// Info describes a leaf certificate, for display and expiry checks.
type Info struct {
	// DNSNames are the leaf's subject alternative DNS names.
	DNSNames []string
	// Serves lists which of the domain itself and its one-label
	// subdomains ("*." + domain) the certificate is valid for: one or both.
	Serves []string
	// Subject and Issuer are distinguished names in RFC 2253 form.
	Subject string
	Issuer  string
	// SerialNumber is the serial number in upper-case hexadecimal, as
	// `openssl x509 -serial` prints it.
	SerialNumber string
	// SHA256Fingerprint is the SHA-256 hash of the leaf's DER encoding in
	// colon-separated upper-case hexadecimal, as browsers show it.
	SHA256Fingerprint string
	NotBefore         time.Time
	NotAfter          time.Time
}

// maxChainLength bounds the certificates of one upload. Real chains have
// two to four.
const maxChainLength = 16

// Validate checks an upload and returns the first problem found as an
// *Error. The domain must be a valid domain name, and the certificate and
// key must parse. The key must match the first certificate, the leaf. The
// leaf must be valid at opts.Now, and its DNS subject alternative names
// must cover the domain or its one-label subdomains. Its common name is
// ignored, as TLS clients ignore it. Last, the chain must verify for TLS
// servers against the uploaded CA or the trusted roots.
func Validate(u Upload, opts Options) (*Certificate, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}

	domain, err := normalizeDomain(u.Domain)
	if err != nil {
		return nil, err
	}
	chain, err := parseCertificates(FieldCertificate, u.Certificate)
	if err != nil {
		return nil, err
	}
	key, err := parsePrivateKey(u.PrivateKey)
	if err != nil {
		return nil, err
	}
	var cas []*x509.Certificate
	if len(strings.TrimSpace(string(u.CACertificate))) > 0 {
		if cas, err = parseCertificates(FieldCACertificate, u.CACertificate); err != nil {
			return nil, err
		}
	}

	leaf := chain[0]
	if err := checkKeyMatches(key, chain); err != nil {
		return nil, err
	}
	if err := checkValidity(leaf, now); err != nil {
		return nil, err
	}
	serves, err := checkServes(leaf, domain)
	if err != nil {
		return nil, err
	}
	if err := verifyChain(chain, cas, opts.Roots, now); err != nil {
		return nil, err
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key as PKCS#8: %w", err)
	}
	return &Certificate{
		Domain:        domain,
		ChainPEM:      encodeCertificates(chain),
		CAPEM:         encodeCertificates(cas),
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Info:          describe(leaf, serves),
	}, nil
}

func describe(leaf *x509.Certificate, serves []string) Info {
	sum := sha256.Sum256(leaf.Raw)
	hexSum := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, 0, len(sum))
	for i := 0; i < len(hexSum); i += 2 {
		pairs = append(pairs, hexSum[i:i+2])
	}
	return Info{
		DNSNames:          slices.Clone(leaf.DNSNames),
		Serves:            serves,
		Subject:           leaf.Subject.String(),
		Issuer:            leaf.Issuer.String(),
		SerialNumber:      strings.ToUpper(leaf.SerialNumber.Text(16)),
		SHA256Fingerprint: strings.Join(pairs, ":"),
		NotBefore:         leaf.NotBefore.UTC(),
		NotAfter:          leaf.NotAfter.UTC(),
	}
}

func encodeCertificates(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// checkKeyMatches fails unless key is the private key of chain[0]. When it
// belongs to a later certificate, the message reports the wrong order.
func checkKeyMatches(key crypto.Signer, chain []*x509.Certificate) error {
	public, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return invalid(ProblemKeyInvalid, FieldPrivateKey, "private_key has an unsupported key type %T", key)
	}
	if public.Equal(chain[0].PublicKey) {
		return nil
	}
	for i, c := range chain[1:] {
		if public.Equal(c.PublicKey) {
			return invalid(ProblemKeyMismatch, FieldCertificate,
				"private_key belongs to certificate %d of the chain, not to the first: put the leaf certificate first, then its intermediates", i+2)
		}
	}
	return invalid(ProblemKeyMismatch, FieldPrivateKey,
		"private_key does not match the certificate: its public key differs from that of the leaf certificate (%s)", chain[0].Subject)
}

func checkValidity(leaf *x509.Certificate, now time.Time) error {
	if now.Before(leaf.NotBefore) {
		return invalid(ProblemNotYetValid, FieldCertificate,
			"certificate is not yet valid: it is valid from %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return invalid(ProblemExpired, FieldCertificate,
			"certificate has expired: it was valid until %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkServes returns which of domain and "*." + domain the leaf is valid
// for, and fails when it is neither.
func checkServes(leaf *x509.Certificate, domain string) ([]string, error) {
	if serves := Serves(domain, leaf.DNSNames); len(serves) > 0 {
		return serves, nil
	}
	names := "none"
	if len(leaf.DNSNames) > 0 {
		names = strings.Join(leaf.DNSNames, ", ")
	}
	return nil, invalid(ProblemDomainMismatch, FieldCertificate,
		"certificate is not valid for domain %s: its DNS names (%s) include neither %s nor *.%s nor a wildcard that matches %s",
		domain, names, domain, domain, domain)
}

// Serves returns which of domain itself and "*." + domain, the name that
// covers every host on it, a certificate with dnsNames is valid for. The
// domain is covered by an equal name or a one-label wildcard, and
// "*." + domain only by that same wildcard name. domain must be in lower
// case.
func Serves(domain string, dnsNames []string) []string {
	serves := []string{}
	var domainServed, hostsServed bool
	for _, pattern := range dnsNames {
		pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
		domainServed = domainServed || MatchesHostname(pattern, domain)
		hostsServed = hostsServed || pattern == "*."+domain
	}
	if domainServed {
		serves = append(serves, domain)
	}
	if hostsServed {
		serves = append(serves, "*."+domain)
	}
	return serves
}

// MatchesHostname reports whether the certificate DNS name pattern covers
// host. A wildcard counts only as the whole left-most label, and it stands
// for exactly one label, as RFC 6125 section 6.4.3 recommends. So
// "*.example.com" covers "a.example.com" but neither "example.com" nor
// "a.b.example.com". Partial wildcards such as "a*.example.com", which
// that section allows, match nothing, as in crypto/x509. Case and a
// trailing dot are ignored.
func MatchesHostname(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == "" || host == "" {
		return false
	}
	parent, wildcard := strings.CutPrefix(pattern, "*.")
	if !wildcard {
		return pattern == host && !strings.Contains(pattern, "*")
	}
	if parent == "" || strings.Contains(parent, "*") {
		return false
	}
	label, hostParent, found := strings.Cut(host, ".")
	return found && label != "" && label != "*" && hostParent == parent
}

// verifyChain verifies the leaf for TLS server use, through the uploaded
// intermediates, to one of cas or, without cas, to roots (nil means the
// system roots).
func verifyChain(chain, cas []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	if len(cas) > 0 {
		roots = x509.NewCertPool()
		for _, c := range cas {
			roots.AddCert(c)
		}
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}

	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		return nil
	}
	return chainError(err, chain[0], len(cas) > 0)
}

// chainError turns a crypto/x509 verification error into a message that
// names the fix. Verification errors name only public certificate
// fields, so their text may be shown.
func chainError(err error, leaf *x509.Certificate, withCA bool) error {
	var unknown x509.UnknownAuthorityError
	var invalidCert x509.CertificateInvalidError
	var systemRoots x509.SystemRootsError
	switch {
	case errors.As(err, &unknown) && withCA:
		return invalid(ProblemChainUntrusted, FieldCertificate,
			"certificate chain does not verify: the chain from %s (issued by %s) does not lead to a certificate in ca_certificate; append the missing intermediate certificates after the leaf, or upload the issuing root in ca_certificate",
			leaf.Subject, leaf.Issuer)
	case errors.As(err, &unknown), errors.As(err, &systemRoots):
		return invalid(ProblemChainUntrusted, FieldCertificate,
			"certificate chain does not verify: the chain from %s (issued by %s) does not lead to a trusted root; append the missing intermediate certificates after the leaf, or upload the issuing root in ca_certificate",
			leaf.Subject, leaf.Issuer)
	case errors.As(err, &invalidCert) && invalidCert.Reason == x509.Expired:
		return invalid(ProblemChainUntrusted, FieldCertificate,
			"certificate chain does not verify: the chain certificate %s has expired or is not yet valid; upload a current intermediate or CA certificate",
			invalidCert.Cert.Subject)
	case errors.As(err, &invalidCert) && invalidCert.Reason == x509.IncompatibleUsage:
		return invalid(ProblemChainUntrusted, FieldCertificate,
			"certificate chain does not verify: a certificate in the chain does not allow TLS server authentication (extended key usage serverAuth)")
	default:
		return invalid(ProblemChainUntrusted, FieldCertificate, "certificate chain does not verify: %v", err)
	}
}
