package cfapi

import (
	"errors"
	"maps"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/tlscert"
)

// Certificates are a Ferry extension: Cloud Foundry has no API for the TLS
// certificates of domains, which its operators configure in the router.
// Each domain has at most one certificate. Its private key is validated
// on upload, stored sealed and never returned.
func (a *API) certificateRoutes() []route {
	const base = "/v3/certificates"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listCertificates},
		{method: http.MethodPost, path: base, handler: a.createCertificate},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getCertificate},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateCertificate},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteCertificate},
	}
}

// certificateCreatePayload is the body of POST /v3/certificates.
type certificateCreatePayload struct {
	Domain        *string          `json:"domain"`
	Certificate   *string          `json:"certificate"`
	PrivateKey    *string          `json:"private_key"`
	CACertificate *string          `json:"ca_certificate"`
	Metadata      *metadataPayload `json:"metadata"`
}

// certificateUpdatePayload is the body of PATCH /v3/certificates/:guid.
// Domain is accepted only to reject it with a message that explains how
// to move a certificate to another domain.
type certificateUpdatePayload struct {
	Domain        *string          `json:"domain"`
	Certificate   *string          `json:"certificate"`
	PrivateKey    *string          `json:"private_key"`
	CACertificate *string          `json:"ca_certificate"`
	Metadata      *metadataPayload `json:"metadata"`
}

// rotates reports whether the update replaces any of the certificate's
// material, which then is validated again as a whole.
func (p certificateUpdatePayload) rotates() bool {
	return p.Certificate != nil || p.PrivateKey != nil || p.CACertificate != nil
}

type certificateJSON struct {
	GUID        string `json:"guid"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
	Domain      string `json:"domain"`
	Certificate string `json:"certificate"`
	// CACertificate is null when the chain was verified against the
	// system roots.
	CACertificate     *string      `json:"ca_certificate"`
	NotBefore         string       `json:"not_before"`
	NotAfter          string       `json:"not_after"`
	DNSNames          []string     `json:"dns_names"`
	Serves            []string     `json:"serves"`
	Subject           string       `json:"subject"`
	Issuer            string       `json:"issuer"`
	SerialNumber      string       `json:"serial_number"`
	SHA256Fingerprint string       `json:"sha256_fingerprint"`
	Metadata          metadataJSON `json:"metadata"`
	Links             struct {
		Self link `json:"self"`
	} `json:"links"`
}

// presentCertificate renders c without its private key, which no response
// contains.
func (a *API) presentCertificate(c store.Certificate) certificateJSON {
	out := certificateJSON{
		GUID:              c.GUID,
		CreatedAt:         timestamp(c.CreatedAt),
		UpdatedAt:         timestamp(c.UpdatedAt),
		Domain:            c.DomainName,
		Certificate:       c.ChainPEM,
		NotBefore:         timestamp(c.NotBefore),
		NotAfter:          timestamp(c.NotAfter),
		DNSNames:          c.DNSNames,
		Serves:            tlscert.Serves(c.DomainName, c.DNSNames),
		Subject:           c.Subject,
		Issuer:            c.Issuer,
		SerialNumber:      c.SerialNumber,
		SHA256Fingerprint: c.SHA256Fingerprint,
		Metadata:          presentMetadata(c.Labels, c.Annotations),
	}
	if c.CAPEM != "" {
		out.CACertificate = &c.CAPEM
	}
	out.Links.Self = link{Href: a.url("/v3/certificates/", c.GUID)}
	return out
}

var certificateListSpec = withCommonFilters(listSpec{
	filters: []string{"domains", "label_selector"},
	orderBy: []string{"created_at", "updated_at", "domain", "not_after"},
})

// listCertificates serves GET /v3/certificates.
func (a *API) listCertificates(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, certificateListSpec)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return nil, err
	}

	f := store.CertificateFilter{CommonFilter: common, DomainNames: q.filter("domains"), LabelSelector: selector}
	certs, total, err := a.store.Certificates(r.Context(), f, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]certificateJSON, len(certs))
	for i, c := range certs {
		resources[i] = a.presentCertificate(c)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// getCertificate serves GET /v3/certificates/:guid.
func (a *API) getCertificate(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	c, err := a.store.Certificate(r.Context(), pathParam(r, "guid"), visibility(r))
	if err != nil {
		return nil, notFoundAs(err, "Certificate")
	}
	return ok(a.presentCertificate(c)), nil
}

// createCertificate serves POST /v3/certificates for admins: it validates
// the upload, seals the private key with the new record's guid and stores
// both.
//
// NOTE: only admins may upload, for any domain name. Once domains have
// owners, the managers of a private domain's organization should upload
// its certificates too, and the domain must exist.
func (a *API) createCertificate(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}
	if err := a.requireSealer(); err != nil {
		return nil, err
	}

	var p certificateCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := requireCertificateFields(p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	upload := tlscert.Upload{Domain: *p.Domain, Certificate: []byte(*p.Certificate), PrivateKey: []byte(*p.PrivateKey)}
	if p.CACertificate != nil {
		upload.CACertificate = []byte(*p.CACertificate)
	}
	validated, err := validateCertificate(upload)
	if err != nil {
		return nil, err
	}

	guid := uuid.NewString()
	record, err := a.sealCertificate(guid, validated)
	if err != nil {
		return nil, err
	}
	record.Labels, record.Annotations = metadataValues(p.Metadata)

	request := certificateRequest(validated, p.Metadata)
	stored, err := a.store.CreateCertificate(r.Context(), record, certificateEvent(actor, "audit.certificate.create", request))
	if store.IsUnique(err, store.ConstraintCertificateDomain) {
		return nil, a.errCertificateExists(r, validated.Domain)
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(r.Context(), a.logger).Info("certificate created",
		"certificate_guid", stored.GUID, "domain", stored.DomainName, "not_after", stored.NotAfter)
	return created(a.presentCertificate(stored)), nil
}

// requireCertificateFields lists every missing required field in one 422.
func requireCertificateFields(p certificateCreatePayload) error {
	var missing []string
	for _, field := range []struct {
		label string
		value *string
	}{{"Domain", p.Domain}, {"Certificate", p.Certificate}, {"Private key", p.PrivateKey}} {
		if field.value == nil || strings.TrimSpace(*field.value) == "" {
			missing = append(missing, field.label+" can't be blank")
		}
	}
	if len(missing) > 0 {
		return apierr.UnprocessableEntity(strings.Join(missing, ", "))
	}
	return nil
}

// errCertificateExists is the 422 for a second certificate of a domain. It
// names the existing certificate, which the client can rotate instead.
func (a *API) errCertificateExists(r *http.Request, domain string) error {
	msg := "A certificate for domain " + domain + " already exists"
	if existing, err := a.store.CertificateByDomain(r.Context(), domain); err == nil {
		msg += ": rotate it with PATCH /v3/certificates/" + existing.GUID + ", or delete it first"
	}
	return apierr.UnprocessableEntity(msg)
}

// updateCertificate serves PATCH /v3/certificates/:guid for admins. Sending
// certificate, private_key or ca_certificate rotates the certificate:
// the fields sent replace the stored ones, and the result is validated as
// an upload is. An empty ca_certificate returns to the system roots. Only
// metadata changes without validation.
func (a *API) updateCertificate(r *http.Request) (*response, error) {
	actor := actorOf(r)
	guid := pathParam(r, "guid")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireCertificateAdmin(r); err != nil {
		return nil, err
	}

	var p certificateUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Domain != nil {
		return nil, apierr.UnprocessableEntity("Domain cannot be changed: upload a certificate for the other domain with POST /v3/certificates, then delete this one")
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	if p.rotates() {
		if err := a.requireSealer(); err != nil {
			return nil, err
		}
	}

	request := map[string]any{}
	change := func(current store.Certificate) (store.CertificateUpdate, error) {
		u := store.CertificateUpdate{Metadata: metadataPatch(p.Metadata)}
		if !p.rotates() {
			return u, nil
		}
		validated, err := a.rotateCertificate(r, current, p)
		if err != nil {
			return u, err
		}
		material, err := a.sealCertificate(guid, validated)
		if err != nil {
			return u, err
		}
		u.Material = &material
		// The audit event already holds request, so it is filled in place.
		maps.Copy(request, certificateRequest(validated, nil))
		return u, nil
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}

	updated, err := a.store.UpdateCertificate(r.Context(), guid, change, certificateEvent(actor, "audit.certificate.update", request))
	if err != nil {
		return nil, notFoundAs(err, "Certificate")
	}
	if p.rotates() {
		loggerFrom(r.Context(), a.logger).Info("certificate rotated",
			"certificate_guid", updated.GUID, "domain", updated.DomainName, "not_after", updated.NotAfter)
	}
	return ok(a.presentCertificate(updated)), nil
}

// rotateCertificate validates current with the fields of p in place of
// the stored ones. A rotation without private_key keeps the stored key,
// which it opens; that suits a renewed certificate for the same key.
func (a *API) rotateCertificate(r *http.Request, current store.Certificate, p certificateUpdatePayload) (*tlscert.Certificate, error) {
	upload := tlscert.Upload{
		Domain:        current.DomainName,
		Certificate:   []byte(current.ChainPEM),
		CACertificate: []byte(current.CAPEM),
	}
	if p.Certificate != nil {
		upload.Certificate = []byte(*p.Certificate)
	}
	if p.CACertificate != nil {
		upload.CACertificate = []byte(*p.CACertificate)
	}
	if p.PrivateKey != nil {
		upload.PrivateKey = []byte(*p.PrivateKey)
	} else {
		key, err := a.sealer.Open(current.EncryptedPrivateKey, []byte(current.GUID))
		if errors.Is(err, tlscert.ErrOtherKey) {
			loggerFrom(r.Context(), a.logger).Warn("stored private key was sealed with another certificate key",
				"certificate_guid", current.GUID)
			return nil, apierr.UnprocessableEntity("The stored private key cannot be decrypted with this installation's certificate key: send private_key with the certificate")
		}
		if err != nil {
			return nil, err
		}
		upload.PrivateKey = key
	}
	return validateCertificate(upload)
}

// deleteCertificate serves DELETE /v3/certificates/:guid for admins. The
// record is gone when the 204 is sent.
func (a *API) deleteCertificate(r *http.Request) (*response, error) {
	actor := actorOf(r)
	guid := pathParam(r, "guid")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireCertificateAdmin(r); err != nil {
		return nil, err
	}

	if err := a.store.DeleteCertificate(r.Context(), guid, certificateEvent(actor, "audit.certificate.delete", nil)); err != nil {
		return nil, notFoundAs(err, "Certificate")
	}
	loggerFrom(r.Context(), a.logger).Info("certificate deleted", "certificate_guid", guid)
	return noContent(), nil
}

// requireCertificateAdmin lets admins through to change the certificate in
// r's path. Anyone else gets 404 when they cannot see it and 403 when they
// can.
//
// NOTE: once domains have owners, the managers of a private domain's
// organization should pass too.
func (a *API) requireCertificateAdmin(r *http.Request) error {
	actor := actorOf(r)
	if actor.IsAdmin() {
		return nil
	}
	if _, err := a.store.Certificate(r.Context(), pathParam(r, "guid"), visibility(r)); err != nil {
		return notFoundAs(err, "Certificate")
	}
	return apierr.NotAuthorized()
}

// requireSealer fails when the API has no key to seal private keys with.
func (a *API) requireSealer() error {
	if a.sealer == nil {
		return apierr.ServiceUnavailable("Certificate storage is not configured: the API has no certificate key")
	}
	return nil
}

// validateCertificate validates an upload against the system roots and
// turns an invalid upload into a 422 with its message.
func validateCertificate(u tlscert.Upload) (*tlscert.Certificate, error) {
	validated, err := tlscert.Validate(u, tlscert.Options{})
	var invalid *tlscert.Error
	if errors.As(err, &invalid) {
		return nil, apierr.UnprocessableEntity(invalid.Message)
	}
	return validated, err
}

// sealCertificate returns the store record of a validated certificate,
// with its private key sealed for guid.
func (a *API) sealCertificate(guid string, c *tlscert.Certificate) (store.Certificate, error) {
	sealed, err := a.sealer.Seal(c.PrivateKeyPEM, []byte(guid))
	if err != nil {
		return store.Certificate{}, err
	}
	return store.Certificate{
		GUID:                guid,
		DomainName:          c.Domain,
		ChainPEM:            string(c.ChainPEM),
		CAPEM:               string(c.CAPEM),
		EncryptedPrivateKey: sealed,
		NotBefore:           c.Info.NotBefore,
		NotAfter:            c.Info.NotAfter,
		DNSNames:            c.Info.DNSNames,
		Issuer:              c.Info.Issuer,
		Subject:             c.Info.Subject,
		SerialNumber:        c.Info.SerialNumber,
		SHA256Fingerprint:   c.Info.SHA256Fingerprint,
	}, nil
}

// certificateRequest is the audit record of an upload: what identifies
// the certificate, never the key or the PEM text.
func certificateRequest(c *tlscert.Certificate, metadata *metadataPayload) map[string]any {
	request := map[string]any{
		"domain":             c.Domain,
		"sha256_fingerprint": c.Info.SHA256Fingerprint,
		"not_after":          timestamp(c.Info.NotAfter),
	}
	if metadata != nil {
		request["metadata"] = metadataRequest(metadata)
	}
	return request
}

// certificateEvent is an audit event of actor on a certificate; the store
// fills the target.
func certificateEvent(actor *auth.Actor, eventType string, request map[string]any) store.AuditEvent {
	ev := store.AuditEvent{Type: eventType, ActorGUID: actor.UserGUID, ActorType: "user", ActorName: actor.DisplayName()}
	if request != nil {
		ev.Data = map[string]any{"request": request}
	}
	return ev
}
