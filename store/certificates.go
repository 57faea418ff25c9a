package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// ConstraintCertificateDomain allows one certificate per domain name.
const ConstraintCertificateDomain = "certificates_domain_name_key"

// Certificate is a TLS certificate uploaded for a domain, a Ferry
// extension. The leaf facts (NotBefore to SHA256Fingerprint) are copied
// from the chain when it is validated, so they always describe ChainPEM.
type Certificate struct {
	GUID string
	// DomainName is in lower case.
	DomainName string
	// ChainPEM is the certificate chain, leaf first.
	ChainPEM string
	// CAPEM is the CA the chain was verified against; empty for the system
	// roots.
	CAPEM string
	// EncryptedPrivateKey is the PEM private key sealed by a
	// tlscert.Sealer with the GUID as associated data.
	EncryptedPrivateKey []byte
	NotBefore           time.Time
	NotAfter            time.Time
	DNSNames            []string
	Issuer              string
	Subject             string
	SerialNumber        string
	SHA256Fingerprint   string
	Labels              map[string]string
	Annotations         map[string]string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// CertificateFilter selects certificates. A nil slice does not filter.
type CertificateFilter struct {
	CommonFilter
	// DomainNames match without regard to case.
	DomainNames   []string
	LabelSelector LabelSelector
}

const certificateColumns = `c.guid, c.domain_name, c.certificate_chain, c.ca_certificate, c.encrypted_private_key,
	c.not_before, c.not_after, c.dns_names, c.issuer, c.subject, c.serial_number, c.sha256_fingerprint,
	c.labels, c.annotations, c.created_at, c.updated_at`

var certificateOrder = map[string]string{
	"created_at": "c.created_at",
	"updated_at": "c.updated_at",
	"domain":     "c.domain_name",
	"not_after":  "c.not_after",
}

func scanCertificate(row interface{ Scan(...any) error }, extra ...any) (Certificate, error) {
	var c Certificate
	var labels, annotations []byte
	dest := []any{&c.GUID, &c.DomainName, &c.ChainPEM, &c.CAPEM, &c.EncryptedPrivateKey,
		&c.NotBefore, &c.NotAfter, pq.Array(&c.DNSNames), &c.Issuer, &c.Subject, &c.SerialNumber, &c.SHA256Fingerprint,
		&labels, &annotations, &c.CreatedAt, &c.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Certificate{}, mapError(err)
	}
	var err error
	if c.Labels, err = jsonMap(labels); err != nil {
		return Certificate{}, err
	}
	if c.Annotations, err = jsonMap(annotations); err != nil {
		return Certificate{}, err
	}
	if c.DNSNames == nil {
		c.DNSNames = []string{}
	}
	return c, nil
}

// certificateCondition restricts certificates to those vis may see.
//
// NOTE: only readers of everything (admins, read-only admins, global
// auditors) see certificates. Once domains have owners, the managers of a
// private domain's organization should see that domain's certificate,
// joined through the domain name.
func certificateCondition(vis Visibility) string {
	if vis.All {
		return "TRUE"
	}
	return "FALSE"
}

// Certificate returns the certificate guid if vis may see it, and
// ErrNotFound otherwise.
func (s *Store) Certificate(ctx context.Context, guid string, vis Visibility) (Certificate, error) {
	c, err := certificate(ctx, s.db, `c.guid = $1 AND `+certificateCondition(vis), guid, "")
	if err != nil {
		return Certificate{}, fmt.Errorf("certificate %s: %w", guid, err)
	}
	return c, nil
}

// CertificateByDomain returns the certificate of domainName, compared
// without regard to case, or ErrNotFound. It applies no visibility: it
// serves the controller, which projects certificates into TLS Secrets.
func (s *Store) CertificateByDomain(ctx context.Context, domainName string) (Certificate, error) {
	c, err := certificate(ctx, s.db, `c.domain_name = lower($1)`, domainName, "")
	if err != nil {
		return Certificate{}, fmt.Errorf("certificate of domain %s: %w", domainName, err)
	}
	return c, nil
}

// certificate reads the one certificate matching where, which refers to
// arg as $1, through q; lock is "" or a locking clause.
func certificate(ctx context.Context, q querier, where, arg, lock string) (Certificate, error) {
	row := q.QueryRowContext(ctx, `SELECT `+certificateColumns+` FROM certificates c WHERE `+where+` `+lock, arg)
	return scanCertificate(row)
}

// Certificates returns one page of the certificates vis may see that match
// f, and the number of matches across all pages.
func (s *Store) Certificates(ctx context.Context, f CertificateFilter, page Page, vis Visibility) ([]Certificate, int, error) {
	var a args
	where := f.conditions("c", &a, []string{certificateCondition(vis)})
	if f.DomainNames != nil {
		where = append(where, "c.domain_name = ANY("+a.add(pq.Array(lowerAll(f.DomainNames)))+"::text[])")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("c.labels", &a))
	}

	from := ` FROM certificates c WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+certificateColumns+`, COUNT(*) OVER ()`+from+
		page.orderBy(certificateOrder, "c.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list certificates: %w", mapError(err))
	}
	defer rows.Close()

	certs := []Certificate{}
	total := 0
	for rows.Next() {
		c, err := scanCertificate(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list certificates: %w", err)
		}
		certs = append(certs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list certificates: %w", mapError(err))
	}
	if len(certs) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list certificates: %w", err)
		}
	}
	return certs, total, nil
}

// CreateCertificate inserts c and records ev in one transaction, and
// returns c as stored. ev carries the type, actor and data; the store fills
// its target. A second certificate for the same domain is a *UniqueError
// on ConstraintCertificateDomain.
func (s *Store) CreateCertificate(ctx context.Context, c Certificate, ev AuditEvent) (Certificate, error) {
	var created Certificate
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `
			INSERT INTO certificates AS c (guid, domain_name, certificate_chain, ca_certificate, encrypted_private_key,
				not_before, not_after, dns_names, issuer, subject, serial_number, sha256_fingerprint, labels, annotations)
			VALUES ($1, lower($2), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			RETURNING `+certificateColumns,
			c.GUID, c.DomainName, c.ChainPEM, c.CAPEM, c.EncryptedPrivateKey,
			c.NotBefore, c.NotAfter, dnsNamesArray(c.DNSNames), c.Issuer, c.Subject, c.SerialNumber, c.SHA256Fingerprint,
			metadataJSON(c.Labels), metadataJSON(c.Annotations))
		var err error
		if created, err = scanCertificate(row); err != nil {
			return fmt.Errorf("create certificate for domain %s: %w", c.DomainName, err)
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = created.GUID, "certificate", created.DomainName
		return RecordAuditEvent(ctx, tx, ev)
	})
	return created, err
}

// CertificateUpdate is a change to a certificate. Nil fields stay as they
// are.
type CertificateUpdate struct {
	// Material, when set, replaces the chain, the CA, the encrypted key
	// and the leaf facts with its own. Its GUID, domain and metadata are
	// ignored.
	Material *Certificate
	Metadata MetadataPatch
}

// UpdateCertificate locks the certificate guid, passes it to change, which
// returns the update to apply, stores the result and records ev, all in
// one transaction. An error from change is returned as is and nothing is
// written. ev carries the type, actor and data; the store fills its
// target. It returns ErrNotFound for an unknown guid.
func (s *Store) UpdateCertificate(ctx context.Context, guid string, change func(Certificate) (CertificateUpdate, error), ev AuditEvent) (Certificate, error) {
	var updated Certificate
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		current, err := certificate(ctx, tx, `c.guid = $1`, guid, "FOR UPDATE OF c")
		if err != nil {
			return fmt.Errorf("update certificate %s: %w", guid, err)
		}
		u, err := change(current)
		if err != nil {
			return err
		}

		a := args{guid}
		set := "updated_at = now()"
		if m := u.Material; m != nil {
			set += ", certificate_chain = " + a.add(m.ChainPEM) + ", ca_certificate = " + a.add(m.CAPEM) +
				", encrypted_private_key = " + a.add(m.EncryptedPrivateKey) +
				", not_before = " + a.add(m.NotBefore) + ", not_after = " + a.add(m.NotAfter) +
				", dns_names = " + a.add(dnsNamesArray(m.DNSNames)) + ", issuer = " + a.add(m.Issuer) +
				", subject = " + a.add(m.Subject) + ", serial_number = " + a.add(m.SerialNumber) +
				", sha256_fingerprint = " + a.add(m.SHA256Fingerprint)
		}
		meta, err := metadataAssignments(u.Metadata, &a)
		if err != nil {
			return fmt.Errorf("update certificate %s: %w", guid, err)
		}
		set += meta

		row := tx.QueryRowContext(ctx, `UPDATE certificates AS c SET `+set+` WHERE c.guid = $1 RETURNING `+certificateColumns, a...)
		if updated, err = scanCertificate(row); err != nil {
			return fmt.Errorf("update certificate %s: %w", guid, err)
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "certificate", updated.DomainName
		return RecordAuditEvent(ctx, tx, ev)
	})
	return updated, err
}

// DeleteCertificate deletes the certificate guid and records ev in one
// transaction. ev carries the type, actor and data; the store fills its
// target. It returns ErrNotFound for an unknown guid.
func (s *Store) DeleteCertificate(ctx context.Context, guid string, ev AuditEvent) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		var domain string
		err := tx.QueryRowContext(ctx, `DELETE FROM certificates WHERE guid = $1 RETURNING domain_name`, guid).Scan(&domain)
		if err != nil {
			return fmt.Errorf("delete certificate %s: %w", guid, mapError(err))
		}
		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "certificate", domain
		return RecordAuditEvent(ctx, tx, ev)
	})
}

// dnsNamesArray is the dns_names parameter, never NULL.
func dnsNamesArray(names []string) any {
	if names == nil {
		names = []string{}
	}
	return pq.Array(names)
}

// deleteDomainCertificates deletes through q the certificates of the
// domains d that match where, which refers to arg as $1, and records ev for
// each with the store filling its target. q should be the transaction that
// deletes those domains.
func deleteDomainCertificates(ctx context.Context, q querier, where, arg string, ev AuditEvent) error {
	rows, err := q.QueryContext(ctx, `DELETE FROM certificates
		WHERE domain_name IN (SELECT lower(d.name) FROM domains d WHERE `+where+`)
		RETURNING guid, domain_name`, arg)
	if err != nil {
		return fmt.Errorf("delete certificates: %w", mapError(err))
	}
	defer rows.Close()
	var deleted []AuditEvent
	for rows.Next() {
		e := ev
		e.GUID, e.TargetType = "", "certificate"
		if err := rows.Scan(&e.TargetGUID, &e.TargetName); err != nil {
			return fmt.Errorf("delete certificates: %w", err)
		}
		deleted = append(deleted, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("delete certificates: %w", mapError(err))
	}
	rows.Close()

	for _, e := range deleted {
		if err := RecordAuditEvent(ctx, q, e); err != nil {
			return err
		}
	}
	return nil
}
