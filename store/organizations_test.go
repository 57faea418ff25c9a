package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// countingDriver is lib/pq with a counter of the statements sent, so tests
// can assert how many queries a store method runs.
type countingDriver struct{ statements *atomic.Int64 }

func (d countingDriver) Open(name string) (driver.Conn, error) {
	conn, err := pq.Driver{}.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, statements: d.statements}, nil
}

// countingConn forwards every optional interface lib/pq's connection has.
type countingConn struct {
	driver.Conn
	statements *atomic.Int64
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.statements.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.statements.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *countingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *countingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

var statementCount atomic.Int64

func init() { sql.Register("postgres-counting", countingDriver{statements: &statementCount}) }

// countingStore opens a store on url whose statements statementCount counts.
// Tests using it must not run in parallel.
func countingStore(t testing.TB, url string) *store.Store {
	t.Helper()
	db, err := sql.Open("postgres-counting", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return store.New(db)
}

// tenancySeed inserts organizations and spaces directly.
type tenancySeed struct {
	t  *testing.T
	st *store.Store
}

func (s tenancySeed) org(name string, labels map[string]string) string {
	s.t.Helper()
	org, err := store.CreateOrganization(context.Background(), s.st.DB(), store.Organization{GUID: uuid.NewString(), Name: name, Labels: labels})
	if err != nil {
		s.t.Fatal(err)
	}
	return org.GUID
}

func (s tenancySeed) space(orgGUID, name string, labels map[string]string) string {
	s.t.Helper()
	sp, err := store.CreateSpace(context.Background(), s.st.DB(), store.Space{GUID: uuid.NewString(), Name: name, OrganizationGUID: orgGUID, Labels: labels})
	if err != nil {
		s.t.Fatal(err)
	}
	return sp.GUID
}

func (s tenancySeed) role(userGUID, roleType, orgGUID, spaceGUID string) {
	s.t.Helper()
	ctx := context.Background()
	if _, err := s.st.DB().ExecContext(ctx, `INSERT INTO users (guid) VALUES ($1) ON CONFLICT DO NOTHING`, userGUID); err != nil {
		s.t.Fatal(err)
	}
	var org, space any
	if spaceGUID != "" {
		space = spaceGUID
	} else {
		org = orgGUID
	}
	if _, err := s.st.DB().ExecContext(ctx, `INSERT INTO roles (guid, type, user_guid, organization_guid, space_guid)
		VALUES ($1, $2, $3, $4, $5)`, uuid.NewString(), roleType, userGUID, org, space); err != nil {
		s.t.Fatal(err)
	}
}

func orgNames(orgs []store.Organization) []string {
	names := []string{}
	for _, o := range orgs {
		names = append(names, o.Name)
	}
	return names
}

func TestOrganizationsLabelSelector(t *testing.T) {
	st := pgtest.NewStore(t)
	seed := tenancySeed{t, st}
	seed.org("a", map[string]string{"env": "prod", "tier": "web"})
	seed.org("b", map[string]string{"env": "dev", "tier": "worker"})
	seed.org("c", map[string]string{"env": "", "example.com/team": "x"})
	seed.org("d", nil)

	exists := func(k string) store.LabelRequirement {
		return store.LabelRequirement{Key: k, Operator: store.LabelExists}
	}
	op := func(k string, o store.LabelOperator, v ...string) store.LabelRequirement {
		return store.LabelRequirement{Key: k, Operator: o, Values: v}
	}
	tests := []struct {
		name string
		sel  store.LabelSelector
		want []string
	}{
		{"exists", store.LabelSelector{exists("env")}, []string{"a", "b", "c"}},
		{"not exists", store.LabelSelector{{Key: "env", Operator: store.LabelNotExists}}, []string{"d"}},
		{"equal", store.LabelSelector{op("env", store.LabelIn, "prod")}, []string{"a"}},
		{"equal empty value", store.LabelSelector{op("env", store.LabelIn, "")}, []string{"c"}},
		{"in", store.LabelSelector{op("env", store.LabelIn, "prod", "dev")}, []string{"a", "b"}},
		{"in nothing", store.LabelSelector{op("env", store.LabelIn)}, []string{}},
		{"not equal keeps unlabelled", store.LabelSelector{op("env", store.LabelNotIn, "prod")}, []string{"b", "c", "d"}},
		{"notin", store.LabelSelector{op("tier", store.LabelNotIn, "web", "worker")}, []string{"c", "d"}},
		{"prefixed key", store.LabelSelector{op("example.com/team", store.LabelIn, "x")}, []string{"c"}},
		{"all requirements hold", store.LabelSelector{exists("env"), op("tier", store.LabelIn, "worker")}, []string{"b"}},
		{"value with quotes is data", store.LabelSelector{op("env", store.LabelIn, `prod"}`)}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orgs, total, err := st.Organizations(context.Background(), store.OrganizationFilter{LabelSelector: tt.sel},
				store.Page{Number: 1, PerPage: 50, OrderBy: "name"}, store.Visibility{All: true})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, orgNames(orgs)); diff != "" {
				t.Errorf("organizations (-want +got):\n%s", diff)
			}
			if total != len(tt.want) {
				t.Errorf("total = %d, want %d", total, len(tt.want))
			}
		})
	}
}

func TestOrganizationUpdateMetadataPatch(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	guid := tenancySeed{t, st}.org("acme", map[string]string{"keep": "1", "change": "old", "drop": "x"})

	v := func(s string) *string { return &s }
	org, err := store.UpdateOrganization(ctx, st.DB(), guid, store.OrganizationUpdate{Metadata: store.MetadataPatch{
		Labels:      map[string]*string{"change": v("new"), "drop": nil, "absent": nil, "add": v("")},
		Annotations: map[string]*string{"note": v("it's \"quoted\"")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"keep": "1", "change": "new", "add": ""}, org.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"note": `it's "quoted"`}, org.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if !org.UpdatedAt.After(org.CreatedAt) && !org.UpdatedAt.Equal(org.CreatedAt) {
		t.Errorf("updated_at %v before created_at %v", org.UpdatedAt, org.CreatedAt)
	}

	_, err = store.UpdateOrganization(ctx, st.DB(), uuid.NewString(), store.OrganizationUpdate{Name: v("x")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing organization: %v, want ErrNotFound", err)
	}
}

func TestOrganizationNamesAreCaseInsensitiveUnique(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	tenancySeed{t, st}.org("Acme", nil)

	_, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "ACME"})
	if !store.IsUnique(err, store.ConstraintOrganizationName) {
		t.Errorf("duplicate name error = %v, want unique violation of %s", err, store.ConstraintOrganizationName)
	}
	orgs, _, err := st.Organizations(ctx, store.OrganizationFilter{Names: []string{"aCmE"}}, store.Page{Number: 1, PerPage: 10}, store.Visibility{All: true})
	if err != nil || len(orgs) != 1 {
		t.Errorf("names filter = %v, %v; want Acme", orgNames(orgs), err)
	}
}

func TestOrganizationDefaultQuotaAndDelete(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	guid := seed.org("acme", nil)
	spaceGUID := seed.space(guid, "dev", nil)
	seed.role("u1", "space_developer", "", spaceGUID)
	seed.role("u1", "organization_user", guid, "")

	org, err := st.Organization(ctx, guid, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var quotaName string
	if err := st.DB().QueryRowContext(ctx, `SELECT name FROM organization_quotas WHERE guid = $1`, org.QuotaGUID).Scan(&quotaName); err != nil || quotaName != "default" {
		t.Errorf("quota = %q, %v; want default", quotaName, err)
	}

	for range 2 {
		if err := store.DeleteOrganization(ctx, st.DB(), guid); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	var left int
	if err := st.DB().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM spaces) + (SELECT count(*) FROM roles)`).Scan(&left); err != nil || left != 0 {
		t.Errorf("spaces and roles left = %d, %v", left, err)
	}
}

func TestOrganizationVisibilityInSQL(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	a, b := seed.org("a", nil), seed.org("b", nil)
	seed.org("c", nil)
	seed.role("u1", "organization_billing_manager", a, "")
	seed.role("u1", "space_supporter", "", seed.space(b, "s", nil))

	user := store.Visibility{UserGUID: "u1"}
	orgs, total, err := st.Organizations(ctx, store.OrganizationFilter{}, store.Page{Number: 1, PerPage: 50, OrderBy: "name"}, user)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, orgNames(orgs)); diff != "" || total != 2 {
		t.Errorf("visible organizations = %v of %d (-want +got):\n%s", orgNames(orgs), total, diff)
	}
	if _, err := st.Organization(ctx, a, store.Visibility{UserGUID: "someone-else"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("invisible organization: %v, want ErrNotFound", err)
	}
}

func TestListingUsesOneQueryPerPage(t *testing.T) {
	url := pgtest.NewURL(t)
	st := countingStore(t, url)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	var orgGUIDs []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		org := seed.org(name, map[string]string{"env": "prod"})
		orgGUIDs = append(orgGUIDs, org)
		for _, space := range []string{"s1", "s2", "s3"} {
			seed.space(org, space, map[string]string{"env": "prod"})
		}
	}
	seed.role("u1", "organization_manager", orgGUIDs[0], "")
	seed.role("u1", "organization_user", orgGUIDs[1], "")

	sel := store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{"prod", "dev"}}}
	visibilities := map[string]store.Visibility{"admin": {All: true}, "user": {UserGUID: "u1"}}
	for who, vis := range visibilities {
		for _, page := range []store.Page{{Number: 1, PerPage: 2, OrderBy: "name"}, {Number: 2, PerPage: 1, OrderBy: "created_at", Descending: true}} {
			statementCount.Store(0)
			orgs, _, err := st.Organizations(ctx, store.OrganizationFilter{Names: []string{"a", "b", "c"}, LabelSelector: sel}, page, vis)
			if err != nil {
				t.Fatal(err)
			}
			if n := statementCount.Load(); n != 1 || len(orgs) == 0 {
				t.Errorf("%s: organizations page %d (%d rows) took %d statements, want 1 for a page with rows", who, page.Number, len(orgs), n)
			}

			statementCount.Store(0)
			spaces, _, err := st.Spaces(ctx, store.SpaceFilter{OrganizationGUIDs: orgGUIDs, Names: []string{"s1", "s2"}, LabelSelector: sel}, page, vis)
			if err != nil {
				t.Fatal(err)
			}
			if n := statementCount.Load(); n != 1 || len(spaces) == 0 {
				t.Errorf("%s: spaces page %d (%d rows) took %d statements, want 1 for a page with rows", who, page.Number, len(spaces), n)
			}
		}
	}

	statementCount.Store(0)
	if _, _, err := st.FeatureFlags(ctx, store.Page{Number: 1, PerPage: 5, OrderBy: "name"}); err != nil {
		t.Fatal(err)
	}
	if n := statementCount.Load(); n != 1 {
		t.Errorf("feature flags page took %d statements, want 1", n)
	}

	// A page past the end has no row to carry the total, so it costs one
	// more query.
	statementCount.Store(0)
	orgs, total, err := st.Organizations(ctx, store.OrganizationFilter{}, store.Page{Number: 9, PerPage: 2}, store.Visibility{All: true})
	if err != nil || len(orgs) != 0 || total != 5 {
		t.Errorf("page past the end = %d rows of %d, %v; want 0 of 5", len(orgs), total, err)
	}
	if n := statementCount.Load(); n != 2 {
		t.Errorf("page past the end took %d statements, want 2", n)
	}
}

func TestOrganizationsPagesDoNotOverlap(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	for _, name := range []string{"x", "X2", "y", "Y2", "z"} {
		seed.org(name, nil)
	}
	var all []string
	for n := 1; n <= 3; n++ {
		orgs, total, err := st.Organizations(ctx, store.OrganizationFilter{}, store.Page{Number: n, PerPage: 2, OrderBy: "name"}, store.Visibility{All: true})
		if err != nil || total != 5 {
			t.Fatalf("page %d: total %d, %v", n, total, err)
		}
		all = append(all, orgNames(orgs)...)
	}
	if diff := cmp.Diff([]string{"x", "X2", "y", "Y2", "z"}, all); diff != "" {
		t.Errorf("pages by name, ignoring case (-want +got):\n%s", diff)
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != 5 {
		t.Errorf("pages overlap: %v", all)
	}
}
