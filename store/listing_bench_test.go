package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// Size of the listing benchmarks' database.
const (
	benchOrganizations   = 10_000
	benchSpacesPerOrg    = 5
	benchUserGUID        = "bench-user"
	benchUserOrgs        = 100 // organizations in which benchUserGUID has a role
	benchUserManagedOrgs = 20  // of those, organizations benchUserGUID manages
)

var (
	benchSeedOnce sync.Once
	benchURL      string
	benchSeedErr  error
)

// benchmarkStore returns a store on a database seeded once per test binary
// with 10,000 organizations and 50,000 spaces. The benchmark user has roles
// in 100 organizations: manager of 20 (so it sees their 100 spaces), and
// user of 80 with space_developer in two spaces of each (160 spaces).
func benchmarkStore(b *testing.B) *store.Store {
	b.Helper()
	benchSeedOnce.Do(func() {
		benchURL = pgtest.NewURL(b)
		start := time.Now()
		benchSeedErr = seedListingBenchmark(benchURL)
		b.Logf("seeded %d organizations and %d spaces in %v", benchOrganizations, benchOrganizations*benchSpacesPerOrg, time.Since(start))
	})
	if benchSeedErr != nil {
		b.Fatal(benchSeedErr)
	}
	st, err := store.Open(context.Background(), benchURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// seedListingBenchmark inserts every row with set-based INSERT … SELECT
// statements, which takes seconds where row-by-row inserts take minutes.
// Every tenth organization and space is labelled env=prod.
func seedListingBenchmark(url string) error {
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()

	statements := []string{
		`INSERT INTO organizations (guid, name, quota_guid, labels, created_at, updated_at)
		SELECT gen_random_uuid()::text, 'org-' || lpad(i::text, 5, '0'), q.guid,
			CASE WHEN i % 10 = 0 THEN '{"env": "prod"}'::jsonb ELSE '{}'::jsonb END,
			now() - (20000 - i) * interval '1 second', now() - (20000 - i) * interval '1 second'
		FROM generate_series(1, 10000) AS i, (SELECT guid FROM organization_quotas WHERE name = 'default') AS q`,
		`INSERT INTO spaces (guid, name, organization_guid, labels, created_at, updated_at)
		SELECT gen_random_uuid()::text, 'space-' || n, o.guid,
			CASE WHEN n = 1 AND right(o.name, 1) = '0' THEN '{"env": "prod"}'::jsonb ELSE '{}'::jsonb END,
			o.created_at + n * interval '1 millisecond', o.created_at + n * interval '1 millisecond'
		FROM organizations o, generate_series(1, 5) AS n`,
		`INSERT INTO users (guid) VALUES ('bench-user')`,
		// Organizations org-00050, org-00150, … org-09950: the user has a
		// role in each; it manages those whose number ends in 50 after a
		// multiple of 500.
		`INSERT INTO roles (guid, type, user_guid, organization_guid)
		SELECT gen_random_uuid()::text,
			CASE WHEN substr(o.name, 5)::int % 500 = 50 THEN 'organization_manager' ELSE 'organization_user' END,
			'bench-user', o.guid
		FROM organizations o WHERE substr(o.name, 5)::int % 100 = 50`,
		`INSERT INTO roles (guid, type, user_guid, space_guid)
		SELECT gen_random_uuid()::text, 'space_developer', 'bench-user', s.guid
		FROM spaces s JOIN organizations o ON o.guid = s.organization_guid
		WHERE substr(o.name, 5)::int % 100 = 50 AND substr(o.name, 5)::int % 500 <> 50 AND s.name IN ('space-1', 'space-2')`,
		`ANALYZE`,
	}
	for _, stmt := range statements {
		if _, err := st.DB().ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// listingCase is one listing request of the benchmarks.
type listingCase struct {
	name string
	vis  store.Visibility
	page store.Page
	// want is the total number of matches, checked on every call.
	want int
}

func listingCases(allRows, userRows int) []listingCase {
	admin := store.Visibility{All: true}
	user := store.Visibility{UserGUID: benchUserGUID}
	byName := func(perPage int) store.Page { return store.Page{Number: 1, PerPage: perPage, OrderBy: "name"} }
	return []listingCase{
		{"admin/per_page=50", admin, byName(50), allRows},
		{"admin/per_page=5000", admin, byName(5000), allRows},
		{"admin/page=100/per_page=50", admin, store.Page{Number: 100, PerPage: 50, OrderBy: "created_at"}, allRows},
		{"user/per_page=50", user, byName(50), userRows},
		{"user/per_page=5000", user, byName(5000), userRows},
	}
}

// reportLatency reports the median and 99th percentile of the recorded
// call durations, in milliseconds.
func reportLatency(b *testing.B, durations []time.Duration) {
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	at := func(p int) float64 {
		i := min(len(durations)*p/100, len(durations)-1)
		return float64(durations[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(50), "p50-ms")
	b.ReportMetric(at(99), "p99-ms")
}

func BenchmarkListOrganizations(b *testing.B) {
	st := benchmarkStore(b)
	ctx := context.Background()
	cases := listingCases(benchOrganizations, benchUserOrgs)
	cases = append(cases,
		listingCase{"admin/names=one", store.Visibility{All: true}, store.Page{Number: 1, PerPage: 1, OrderBy: "name"}, 1},
		listingCase{"admin/label_selector=env=prod", store.Visibility{All: true}, store.Page{Number: 1, PerPage: 50, OrderBy: "name"}, benchOrganizations / 10},
	)

	for _, c := range cases {
		filter := store.OrganizationFilter{}
		switch c.name {
		case "admin/names=one":
			filter.Names = []string{"ORG-04242"}
		case "admin/label_selector=env=prod":
			filter.LabelSelector = store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{"prod"}}}
		}
		b.Run(c.name, func(b *testing.B) {
			var durations []time.Duration
			for b.Loop() {
				start := time.Now()
				_, total, err := st.Organizations(ctx, filter, c.page, c.vis)
				durations = append(durations, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if total != c.want {
					b.Fatalf("total = %d, want %d", total, c.want)
				}
			}
			reportLatency(b, durations)
		})
	}
}

func BenchmarkListSpaces(b *testing.B) {
	st := benchmarkStore(b)
	ctx := context.Background()
	userSpaces := benchUserManagedOrgs*benchSpacesPerOrg + (benchUserOrgs-benchUserManagedOrgs)*2
	cases := listingCases(benchOrganizations*benchSpacesPerOrg, userSpaces)

	// cf target -o ORG lists the spaces of one organization by name.
	var orgGUID string
	if err := st.DB().QueryRowContext(ctx, `SELECT guid FROM organizations WHERE name = 'org-00050'`).Scan(&orgGUID); err != nil {
		b.Fatal(err)
	}
	cases = append(cases, listingCase{"user/organization_guids=one", store.Visibility{UserGUID: benchUserGUID},
		store.Page{Number: 1, PerPage: 50, OrderBy: "name"}, benchSpacesPerOrg})

	for _, c := range cases {
		filter := store.SpaceFilter{}
		if c.name == "user/organization_guids=one" {
			filter.OrganizationGUIDs = []string{orgGUID}
		}
		b.Run(c.name, func(b *testing.B) {
			var durations []time.Duration
			for b.Loop() {
				start := time.Now()
				_, total, err := st.Spaces(ctx, filter, c.page, c.vis)
				durations = append(durations, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if total != c.want {
					b.Fatalf("total = %d, want %d", total, c.want)
				}
			}
			reportLatency(b, durations)
		})
	}
}
