package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// testCertificate is a certificate record; the store does not parse the
// PEM or open the key, so they need not be real.
func testCertificate(domain string, notAfter time.Time) store.Certificate {
	return store.Certificate{
		GUID:                uuid.NewString(),
		DomainName:          domain,
		ChainPEM:            "-----BEGIN CERTIFICATE-----\nchain of " + domain + "\n-----END CERTIFICATE-----\n",
		EncryptedPrivateKey: []byte{1, 2, 3, 0, 255},
		NotBefore:           notAfter.AddDate(-1, 0, 0),
		NotAfter:            notAfter,
		DNSNames:            []string{"*." + domain},
		Issuer:              "CN=Test CA",
		Subject:             "CN=*." + domain,
		SerialNumber:        "1A2B",
		SHA256Fingerprint:   "AA:BB",
		Labels:              map[string]string{},
		Annotations:         map[string]string{},
	}
}

func certificateEvent(eventType string) store.AuditEvent {
	return store.AuditEvent{Type: eventType, ActorGUID: "admin-guid", ActorType: "user", ActorName: "admin"}
}

var allVisible = store.Visibility{All: true}

func TestCertificateCreateAndRead(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	notAfter := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

	want := testCertificate("Apps.Example.com", notAfter)
	want.CAPEM = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
	want.Labels = map[string]string{"team": "edge"}
	created, err := st.CreateCertificate(ctx, want, certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}
	want.DomainName = "apps.example.com"
	ignoreTimes := cmp.FilterPath(func(p cmp.Path) bool {
		name := p.Last().String()
		return name == ".CreatedAt" || name == ".UpdatedAt"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, created, ignoreTimes); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}

	got, err := st.Certificate(ctx, created.GUID, allVisible)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("Certificate (-created +got):\n%s", diff)
	}
	byDomain, err := st.CertificateByDomain(ctx, "APPS.example.com")
	if err != nil || byDomain.GUID != created.GUID {
		t.Errorf("CertificateByDomain = %s, %v; want %s", byDomain.GUID, err, created.GUID)
	}

	var events int
	err = st.DB().QueryRowContext(ctx, `SELECT count(*) FROM audit_events
		WHERE type = 'audit.certificate.create' AND target_guid = $1 AND target_type = 'certificate' AND target_name = 'apps.example.com'`,
		created.GUID).Scan(&events)
	if err != nil || events != 1 {
		t.Errorf("create audit events = %d, %v; want 1", events, err)
	}
}

func TestCertificateOnePerDomain(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	notAfter := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

	if _, err := st.CreateCertificate(ctx, testCertificate("apps.example.com", notAfter), certificateEvent("audit.certificate.create")); err != nil {
		t.Fatal(err)
	}
	_, err := st.CreateCertificate(ctx, testCertificate("APPS.example.com", notAfter), certificateEvent("audit.certificate.create"))
	if !store.IsUnique(err, store.ConstraintCertificateDomain) {
		t.Fatalf("second certificate for the domain = %v, want a unique violation on %s", err, store.ConstraintCertificateDomain)
	}
	var events int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM audit_events`).Scan(&events); err != nil || events != 1 {
		t.Errorf("audit events = %d, %v; want only the first create", events, err)
	}
}

func TestCertificateVisibility(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	created, err := st.CreateCertificate(ctx, testCertificate("apps.example.com", time.Now().AddDate(1, 0, 0)), certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}

	user := store.Visibility{UserGUID: uuid.NewString()}
	if _, err := st.Certificate(ctx, created.GUID, user); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Certificate for a user = %v, want ErrNotFound", err)
	}
	certs, total, err := st.Certificates(ctx, store.CertificateFilter{}, store.Page{Number: 1, PerPage: 50}, user)
	if err != nil || len(certs) != 0 || total != 0 {
		t.Errorf("Certificates for a user = %d of %d, %v; want none", len(certs), total, err)
	}
}

func TestCertificatesFilterAndOrder(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

	var guids []string
	for i, domain := range []string{"c.example.com", "a.example.com", "b.example.com"} {
		c := testCertificate(domain, base.AddDate(0, 0, -i))
		if domain == "b.example.com" {
			c.Labels = map[string]string{"env": "prod"}
		}
		created, err := st.CreateCertificate(ctx, c, certificateEvent("audit.certificate.create"))
		if err != nil {
			t.Fatal(err)
		}
		guids = append(guids, created.GUID)
	}

	first := store.Page{Number: 1, PerPage: 50}
	for _, tc := range []struct {
		name   string
		filter store.CertificateFilter
		page   store.Page
		want   []string
		total  int
	}{
		{"all by creation", store.CertificateFilter{}, first, []string{"c.example.com", "a.example.com", "b.example.com"}, 3},
		{"by domain name", store.CertificateFilter{}, store.Page{Number: 1, PerPage: 50, OrderBy: "domain"},
			[]string{"a.example.com", "b.example.com", "c.example.com"}, 3},
		{"expiring first", store.CertificateFilter{}, store.Page{Number: 1, PerPage: 50, OrderBy: "not_after"},
			[]string{"b.example.com", "a.example.com", "c.example.com"}, 3},
		{"domain names ignore case", store.CertificateFilter{DomainNames: []string{"A.Example.com", "c.example.com"}}, first,
			[]string{"c.example.com", "a.example.com"}, 2},
		{"guids", store.CertificateFilter{CommonFilter: store.CommonFilter{GUIDs: guids[2:]}}, first, []string{"b.example.com"}, 1},
		{"label selector", store.CertificateFilter{LabelSelector: store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{"prod"}}}},
			first, []string{"b.example.com"}, 1},
		{"second page", store.CertificateFilter{}, store.Page{Number: 2, PerPage: 2}, []string{"b.example.com"}, 3},
		{"past the last page", store.CertificateFilter{}, store.Page{Number: 3, PerPage: 2}, []string{}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, total, err := st.Certificates(ctx, tc.filter, tc.page, allVisible)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, c := range certs {
				got = append(got, c.DomainName)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("domains (-want +got):\n%s", diff)
			}
			if total != tc.total {
				t.Errorf("total = %d, want %d", total, tc.total)
			}
		})
	}
}

func TestCertificateUpdate(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	original := testCertificate("apps.example.com", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	original.Labels = map[string]string{"keep": "yes", "drop": "yes"}
	created, err := st.CreateCertificate(ctx, original, certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}

	rotated := testCertificate("ignored.example.org", time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))
	rotated.ChainPEM = "-----BEGIN CERTIFICATE-----\nrenewed\n-----END CERTIFICATE-----\n"
	rotated.EncryptedPrivateKey = []byte{9, 9, 9}
	rotated.DNSNames = []string{"apps.example.com", "*.apps.example.com"}
	rotated.SerialNumber = "FFFF"
	newValue := "new"
	update := store.CertificateUpdate{Material: &rotated,
		Metadata: store.MetadataPatch{Labels: map[string]*string{"drop": nil, "added": &newValue}}}

	var seen store.Certificate
	updated, err := st.UpdateCertificate(ctx, created.GUID, func(c store.Certificate) (store.CertificateUpdate, error) {
		seen = c
		return update, nil
	}, certificateEvent("audit.certificate.update"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, seen); diff != "" {
		t.Errorf("change saw (-stored +seen):\n%s", diff)
	}

	want := rotated
	want.GUID, want.DomainName, want.CreatedAt = created.GUID, created.DomainName, created.CreatedAt
	want.Labels = map[string]string{"keep": "yes", "added": "new"}
	want.UpdatedAt = updated.UpdatedAt
	if diff := cmp.Diff(want, updated); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}
	if !updated.UpdatedAt.After(created.UpdatedAt) && !updated.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", created.UpdatedAt, updated.UpdatedAt)
	}

	// A failing change writes nothing.
	rejected := errors.New("rejected")
	_, err = st.UpdateCertificate(ctx, created.GUID, func(store.Certificate) (store.CertificateUpdate, error) {
		return store.CertificateUpdate{}, rejected
	}, certificateEvent("audit.certificate.update"))
	if !errors.Is(err, rejected) {
		t.Errorf("UpdateCertificate with a failing change = %v, want the change's error", err)
	}
	var events int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE type = 'audit.certificate.update'`).Scan(&events); err != nil || events != 1 {
		t.Errorf("update audit events = %d, %v; want 1", events, err)
	}

	_, err = st.UpdateCertificate(ctx, uuid.NewString(), func(store.Certificate) (store.CertificateUpdate, error) {
		return update, nil
	}, certificateEvent("audit.certificate.update"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateCertificate of an unknown guid = %v, want ErrNotFound", err)
	}
}

func TestCertificateDelete(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	created, err := st.CreateCertificate(ctx, testCertificate("apps.example.com", time.Now().AddDate(1, 0, 0)), certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}

	if err := st.DeleteCertificate(ctx, created.GUID, certificateEvent("audit.certificate.delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Certificate(ctx, created.GUID, allVisible); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Certificate after delete = %v, want ErrNotFound", err)
	}
	if err := st.DeleteCertificate(ctx, created.GUID, certificateEvent("audit.certificate.delete")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	var name string
	err = st.DB().QueryRowContext(ctx, `SELECT target_name FROM audit_events WHERE type = 'audit.certificate.delete' AND target_guid = $1`,
		created.GUID).Scan(&name)
	if err != nil || name != "apps.example.com" {
		t.Errorf("delete audit event target = %q, %v; want apps.example.com", name, err)
	}

	// The domain is free again.
	if _, err := st.CreateCertificate(ctx, testCertificate("apps.example.com", time.Now().AddDate(1, 0, 0)), certificateEvent("audit.certificate.create")); err != nil {
		t.Errorf("create after delete: %v", err)
	}
}
