package k8sbackend

import (
	"context"
	"log/slog"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/tlscert"
)

// DesiredCertificates is the source of the domains' uploaded certificates,
// normally PostgreSQL.
type DesiredCertificates interface {
	// Certificates returns every domain certificate with its key opened.
	// A certificate whose key cannot be opened, for example because it was
	// sealed with another certificate key, comes back with PrivateKeyPEM
	// nil, so the caller keeps its Secret as it is instead of deleting it.
	Certificates(ctx context.Context) ([]TLSCertificateSpec, error)
}

// StoreCertificates reads the uploaded certificates from the store and
// opens their keys with Sealer, the sealer the API seals them with.
type StoreCertificates struct {
	Store  *store.Store
	Sealer *tlscert.Sealer
	// Installation is TLSCertificateSpec.Installation of every
	// certificate.
	Installation string
	Logger       *slog.Logger
}

// Certificates implements DesiredCertificates. Without a Sealer no key
// opens, so every certificate comes back without its key.
func (s StoreCertificates) Certificates(ctx context.Context) ([]TLSCertificateSpec, error) {
	certs, err := s.Store.AllCertificates(ctx)
	if err != nil {
		return nil, err
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	specs := make([]TLSCertificateSpec, 0, len(certs))
	for _, c := range certs {
		spec := TLSCertificateSpec{
			Installation: s.Installation,
			GUID:         c.GUID,
			Domain:       c.DomainName,
			ChainPEM:     []byte(c.ChainPEM),
		}
		if c.CAPEM != "" {
			spec.CAPEM = []byte(c.CAPEM)
		}
		if s.Sealer == nil {
			logger.Warn("no certificate key is configured, so the certificate's key cannot be opened",
				"certificate", c.GUID, "domain", c.DomainName)
		} else if key, err := s.Sealer.Open(c.EncryptedPrivateKey, []byte(c.GUID)); err != nil {
			// The error names the failure (other key or corrupt value)
			// and never contains key material.
			logger.Warn("open the certificate's private key failed, so its Secret is left as it is",
				"certificate", c.GUID, "domain", c.DomainName, "error", err)
		} else {
			spec.PrivateKeyPEM = key
		}
		specs = append(specs, spec)
	}
	return specs, nil
}
