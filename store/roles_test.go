package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// roleTestStore opens a store on a fresh database whose statements
// statementCount counts.
func roleTestStore(t *testing.T) *store.Store {
	t.Helper()
	return countingStore(t, pgtest.NewURL(t))
}

// seedMembers creates an org with spaces and 60 users, each with an org role,
// a space role and an audit event, and returns one member's guid.
func seedMembers(t *testing.T, db *sql.DB) string {
	t.Helper()
	ctx := context.Background()
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	exec(`INSERT INTO organizations (guid, name, quota_guid) SELECT 'o1', 'acme', guid FROM organization_quotas WHERE name = 'default'`)
	exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ('s1', 'dev', 'o1'), ('s2', 'prod', 'o1')`)
	var member string
	for i := range 60 {
		user := uuid.NewString()
		member = user
		exec(`INSERT INTO users (guid) VALUES ($1)`, user)
		exec(`INSERT INTO uaa_users (id, username) VALUES ($1, $2)`, user, fmt.Sprintf("user-%02d", i))
		exec(`INSERT INTO roles (guid, type, user_guid, organization_guid) VALUES ($1, 'organization_user', $2, 'o1')`, uuid.NewString(), user)
		exec(`INSERT INTO roles (guid, type, user_guid, space_guid) VALUES ($1, 'space_developer', $2, $3)`,
			uuid.NewString(), user, []string{"s1", "s2"}[i%2])
		ev := store.AuditEvent{Type: "audit.user.space_developer_add", ActorGUID: "a", ActorType: "user", ActorName: "admin",
			TargetGUID: user, TargetType: "user", SpaceGUID: []string{"s1", "s2"}[i%2], OrganizationGUID: "o1"}
		if err := store.RecordAuditEvent(ctx, db, ev); err != nil {
			t.Fatal(err)
		}
	}
	return member
}

func TestListsRunOneQueryPerPage(t *testing.T) {
	st := roleTestStore(t)
	member := seedMembers(t, st.DB())
	ctx := context.Background()

	visibilities := map[string]store.Visibility{
		"admin":  {All: true},
		"member": {UserGUID: member},
	}
	lists := map[string]func(store.Visibility, store.Page) (int, int, error){
		"roles": func(vis store.Visibility, page store.Page) (int, int, error) {
			roles, total, err := st.Roles(ctx, vis, store.RoleFilter{}, page)
			return len(roles), total, err
		},
		"users": func(vis store.Visibility, page store.Page) (int, int, error) {
			users, total, err := st.Users(ctx, vis, store.UserFilter{Usernames: []string{"USER-01", "user-02", "user-59"}}, page)
			return len(users), total, err
		},
		"audit events": func(vis store.Visibility, page store.Page) (int, int, error) {
			events, total, err := st.AuditEvents(ctx, vis, store.AuditEventFilter{}, page)
			return len(events), total, err
		},
	}
	for listName, list := range lists {
		for visName, vis := range visibilities {
			for _, page := range []store.Page{{Number: 1, PerPage: 50}, {Number: 2, PerPage: 50}, {Number: 1, PerPage: 5000}} {
				t.Run(fmt.Sprintf("%s as %s page %d of %d", listName, visName, page.Number, page.PerPage), func(t *testing.T) {
					before := statementCount.Load()
					n, total, err := list(vis, page)
					if err != nil {
						t.Fatal(err)
					}
					// A page past the last one has no row to carry the
					// total, so it costs a second query that counts.
					want := int64(1)
					if n == 0 && page.Number > 1 {
						want = 2
					}
					if got := statementCount.Load() - before; got != want {
						t.Errorf("queries = %d for %d of %d results, want %d", got, n, total, want)
					}
				})
			}
		}
	}
}

func TestRoleVisibilityForMember(t *testing.T) {
	st := roleTestStore(t)
	member := seedMembers(t, st.DB())
	ctx := context.Background()

	// The member sees every org role of the org, but space roles only of the
	// space they develop in.
	roles, total, err := st.Roles(ctx, store.Visibility{UserGUID: member}, store.RoleFilter{}, store.Page{Number: 1, PerPage: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if total != 90 || len(roles) != 90 {
		t.Errorf("visible roles = %d (total %d), want 60 org roles and 30 space roles", len(roles), total)
	}
	events, total, err := st.AuditEvents(ctx, store.Visibility{UserGUID: member}, store.AuditEventFilter{}, store.Page{Number: 1, PerPage: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if total != 30 || len(events) != 30 {
		t.Errorf("visible audit events = %d (total %d), want the 30 of the member's space", len(events), total)
	}
}
