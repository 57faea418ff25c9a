package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// createDomain creates the domain name owned by orgGUID ("" for a shared
// domain) in a transaction of its own.
func createDomain(st *store.Store, name, orgGUID string) (store.Domain, error) {
	var created store.Domain
	err := st.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		created, err = store.CreateDomain(context.Background(), tx, store.Domain{GUID: uuid.NewString(), Name: name, OrganizationGUID: orgGUID})
		return err
	})
	return created, err
}

func mustCreateDomain(t *testing.T, st *store.Store, name, orgGUID string) store.Domain {
	t.Helper()
	d, err := createDomain(st, name, orgGUID)
	if err != nil {
		t.Fatalf("create domain %s: %v", name, err)
	}
	return d
}

func TestCreateDomainReservations(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	owner, other := seed.org("owner", nil), seed.org("other", nil)
	space := seed.space(other, "dev", nil)
	mustCreateDomain(t, st, "x.example", owner)
	shared := mustCreateDomain(t, st, "apps.example", "")
	_, err := st.DB().ExecContext(ctx, `INSERT INTO routes (guid, host, protocol, domain_guid, space_guid)
		VALUES ($1, 'taken', 'http', $2, $3)`, uuid.NewString(), shared.GUID, space)
	if err != nil {
		t.Fatal(err)
	}

	rejected := []struct {
		name, org, reservedBy string
		byRoute               bool
	}{
		{"sub.x.example", other, "x.example", false},
		{"deep.sub.X.example", other, "x.example", false},
		{"sub.x.example", "", "x.example", false},
		{"taken.apps.example", other, "taken.apps.example", true},
		{"Taken.apps.example", "", "taken.apps.example", true},
	}
	for _, tc := range rejected {
		_, err := createDomain(st, tc.name, tc.org)
		var reserved *store.DomainReservedError
		if !errors.As(err, &reserved) {
			t.Errorf("create %s in org %q: error = %v, want a DomainReservedError", tc.name, tc.org, err)
			continue
		}
		if reserved.ReservedBy != tc.reservedBy || reserved.ByRoute != tc.byRoute {
			t.Errorf("create %s in org %q: reserved by %q (route %v), want %q (route %v)",
				tc.name, tc.org, reserved.ReservedBy, reserved.ByRoute, tc.reservedBy, tc.byRoute)
		}
	}
	var count int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM domains`).Scan(&count); err != nil || count != 2 {
		t.Errorf("domains after rejected creates = %d, %v; want 2", count, err)
	}

	// The owner may add subdomains, shared domains reserve nothing, and
	// only the route's own host name is reserved.
	for _, tc := range []struct{ name, org string }{
		{"sub.x.example", owner},
		{"team.apps.example", other},
		{"team2.apps.example", ""},
		{"deeper.taken.apps.example", other},
	} {
		if _, err := createDomain(st, tc.name, tc.org); err != nil {
			t.Errorf("create %s in org %q: %v", tc.name, tc.org, err)
		}
	}

	// An equal name is in use, not reserved.
	if _, err := createDomain(st, "X.example", other); !store.IsUnique(err, store.ConstraintDomainName) {
		t.Errorf("create an existing name: error = %v, want a unique violation", err)
	}
}

func TestDeleteDomainDeletesCertificate(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	deletedDomain := mustCreateDomain(t, st, "gone.example", "")
	mustCreateDomain(t, st, "kept.example", "")
	notAfter := time.Now().AddDate(1, 0, 0)
	cert, err := st.CreateCertificate(ctx, testCertificate("gone.example", notAfter), certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := st.CreateCertificate(ctx, testCertificate("kept.example", notAfter), certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}

	for range 2 {
		err := st.InTx(ctx, func(tx *sql.Tx) error {
			return store.DeleteDomain(ctx, tx, deletedDomain.GUID, certificateEvent("audit.certificate.delete"))
		})
		if err != nil {
			t.Fatalf("delete domain: %v", err)
		}
	}
	if _, err := st.Certificate(ctx, cert.GUID, allVisible); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("certificate of the deleted domain: error = %v, want ErrNotFound", err)
	}
	if _, err := st.Certificate(ctx, otherCert.GUID, allVisible); err != nil {
		t.Errorf("certificate of another domain: %v", err)
	}
	var actor, target string
	err = st.DB().QueryRowContext(ctx, `SELECT actor_name, target_name FROM audit_events
		WHERE type = 'audit.certificate.delete' AND target_guid = $1`, cert.GUID).Scan(&actor, &target)
	if err != nil || actor != "admin" || target != "gone.example" {
		t.Errorf("certificate delete event = %q on %q, %v; want admin on gone.example", actor, target, err)
	}

	// A new domain of the same name accepts a new certificate.
	mustCreateDomain(t, st, "gone.example", "")
	if _, err := st.CreateCertificate(ctx, testCertificate("gone.example", notAfter), certificateEvent("audit.certificate.create")); err != nil {
		t.Errorf("upload after the domain was re-created: %v", err)
	}
}

func TestDeleteOrganizationDeletesDomainCertificates(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	org := seed.org("owner", nil)
	mustCreateDomain(t, st, "private.example", org)
	mustCreateDomain(t, st, "shared.example", "")
	notAfter := time.Now().AddDate(1, 0, 0)
	private, err := st.CreateCertificate(ctx, testCertificate("private.example", notAfter), certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}
	shared, err := st.CreateCertificate(ctx, testCertificate("shared.example", notAfter), certificateEvent("audit.certificate.create"))
	if err != nil {
		t.Fatal(err)
	}

	if err := store.DeleteOrganization(ctx, st.DB(), org); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Certificate(ctx, private.GUID, allVisible); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("certificate of the private domain: error = %v, want ErrNotFound", err)
	}
	if _, err := st.Certificate(ctx, shared.GUID, allVisible); err != nil {
		t.Errorf("certificate of the shared domain: %v", err)
	}
	var events int
	err = st.DB().QueryRowContext(ctx, `SELECT count(*) FROM audit_events
		WHERE type = 'audit.certificate.delete' AND target_guid = $1`, private.GUID).Scan(&events)
	if err != nil || events != 1 {
		t.Errorf("certificate delete events = %d, %v; want 1", events, err)
	}
}
