package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
)

// minRSABits is the smallest RSA key accepted, the minimum key strength of
// the CA/Browser Forum Baseline Requirements for publicly trusted TLS
// certificates.
const minRSABits = 2048

// maxDomainLength is the longest domain name DNS allows, in its text form.
const maxDomainLength = 253

// normalizeDomain lower-cases domain, drops a trailing dot and checks that
// it is a domain name: dot-separated labels of letters, digits and '-',
// each of 1 to 63 characters that neither start nor end with '-'.
func normalizeDomain(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	switch {
	case d == "":
		return "", invalid(ProblemDomainInvalid, FieldDomain, "domain must not be empty: give the domain name the certificate is for, such as apps.example.com")
	case strings.HasPrefix(d, "*."):
		return "", invalid(ProblemDomainInvalid, FieldDomain,
			"domain %s is a wildcard: give the domain itself, %s; a certificate for *.%s then serves every host on it", domain, d[2:], d[2:])
	case len(d) > maxDomainLength:
		return "", invalid(ProblemDomainInvalid, FieldDomain, "domain is %d characters long: the maximum is %d", len(d), maxDomainLength)
	}
	for label := range strings.SplitSeq(d, ".") {
		if !validLabel(label) {
			return "", invalid(ProblemDomainInvalid, FieldDomain,
				"domain %q is not a valid domain name: each dot-separated label must have 1 to 63 letters, digits or '-', and must not start or end with '-'", domain)
		}
	}
	return d, nil
}

func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, c := range []byte(label) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseCertificates parses the PEM certificates in data, which field
// names in messages. Text outside PEM blocks, such as the "subject=" lines
// openssl writes, is ignored. Every block must be a valid certificate.
func parseCertificates(field string, data []byte) ([]*x509.Certificate, error) {
	problem := ProblemCertificateInvalid
	if field == FieldCACertificate {
		problem = ProblemCAInvalid
	}

	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, invalid(problem, field,
				"%s contains a private key in PEM block %d: send only certificates in %s and the key in private_key", field, n, field)
		case block.Type != "CERTIFICATE":
			return nil, invalid(problem, field, "%s PEM block %d is a %q block: only CERTIFICATE blocks are allowed", field, n, block.Type)
		case len(certs) == maxChainLength:
			return nil, invalid(problem, field, "%s has more than %d certificates: send the leaf and its intermediates only", field, maxChainLength)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, invalid(problem, field, "%s PEM block %d is not a valid X.509 certificate: %v", field, n, err)
		}
		certs = append(certs, cert)
	}

	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, invalid(problem, field,
			"%s PEM block %d is malformed: check that every -----BEGIN line has a matching -----END line and only base64 between them", field, len(certs)+1)
	}
	if len(certs) == 0 {
		return nil, invalid(problem, field,
			"%s is not a PEM certificate: send one or more blocks starting with -----BEGIN CERTIFICATE-----", field)
	}
	return certs, nil
}

// parsePrivateKey parses the single unencrypted PEM private key in data.
// EC PARAMETERS blocks, which `openssl ecparam -genkey` writes before the
// key, are skipped.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	var key crypto.Signer
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		if key != nil {
			return nil, invalid(ProblemKeyInvalid, FieldPrivateKey, "private_key has more than one PEM block: send only the key of the leaf certificate")
		}
		parsed, err := parseKeyBlock(block, n)
		if err != nil {
			return nil, err
		}
		key = parsed
	}

	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, invalid(ProblemKeyInvalid, FieldPrivateKey,
			"private_key has a malformed PEM block: check that its -----BEGIN line has a matching -----END line")
	}
	if key == nil {
		return nil, invalid(ProblemKeyInvalid, FieldPrivateKey,
			"private_key is not a PEM private key: send a block starting with -----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----")
	}
	return key, checkKeyStrength(key)
}

// parseKeyBlock parses PEM block n of private_key. Its messages leave out
// the parser's error text, which can quote bytes of the key.
func parseKeyBlock(block *pem.Block, n int) (crypto.Signer, error) {
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, invalid(ProblemKeyInvalid, FieldPrivateKey,
			"private_key is encrypted: send it unencrypted, e.g. the output of `openssl pkey -in key.pem`")
	}

	var parsed any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	case "CERTIFICATE":
		return nil, invalid(ProblemKeyInvalid, FieldPrivateKey,
			"private_key contains a certificate in PEM block %d: send certificates in certificate and only the key in private_key", n)
	default:
		return nil, invalid(ProblemKeyInvalid, FieldPrivateKey,
			"private_key PEM block %d is a %q block: use PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", n, block.Type)
	}
	if err != nil {
		return nil, invalid(ProblemKeyInvalid, FieldPrivateKey, "private_key PEM block %d is not a valid %s", n, block.Type)
	}

	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, invalid(ProblemKeyUnsupported, FieldPrivateKey,
			"private_key is a %T key: TLS certificates need an RSA, ECDSA or Ed25519 key", parsed)
	}
}

func checkKeyStrength(key crypto.Signer) error {
	if k, ok := key.(*rsa.PrivateKey); ok && k.N.BitLen() < minRSABits {
		return invalid(ProblemKeyUnsupported, FieldPrivateKey,
			"private_key is a %d-bit RSA key: use at least %d bits", k.N.BitLen(), minRSABits)
	}
	return nil
}
