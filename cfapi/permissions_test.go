package cfapi

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrycf/ferry/auth"
)

// permissionActors are the identities of the permission matrix: the global
// scopes, every org and space role in the fixture org and space, and a user
// with no role at all.
var permissionActors = []string{
	"admin", "admin_read_only", "global_auditor",
	"org_manager", "org_auditor", "org_billing_manager", "org_user",
	"space_manager", "space_developer", "space_auditor", "space_supporter",
	"no_role",
}

// permissionFixture is one org with one space, and a token per actor.
type permissionFixture struct {
	env    *testEnv
	org    string
	space  string
	tokens map[string]string
	seq    atomic.Int64
}

func newPermissionFixture(t *testing.T) *permissionFixture {
	env := newTestEnv(t)
	admin := env.adminToken()
	f := &permissionFixture{env: env, tokens: map[string]string{"admin": admin}}

	var org, space struct{ GUID string }
	env.do(http.MethodPost, "/v3/organizations", admin, map[string]any{"name": "matrix-org"}).expect(http.StatusCreated).decode(&org)
	env.do(http.MethodPost, "/v3/spaces", admin, map[string]any{
		"name":          "matrix-space",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org.GUID}}},
	}).expect(http.StatusCreated).decode(&space)
	f.org, f.space = org.GUID, space.GUID

	_, f.tokens["admin_read_only"] = env.newUser("reader", auth.ScopeAdminReadOnly)
	_, f.tokens["global_auditor"] = env.newUser("auditor", auth.ScopeGlobalAuditor)
	_, f.tokens["no_role"] = env.newUser("stranger")

	for _, actor := range permissionActors[3:11] {
		guid, token := env.newUser(actor)
		f.tokens[actor] = token
		if strings.HasPrefix(actor, "space_") {
			f.grant(t, guid, "organization_user", "organization", f.org)
			f.grant(t, guid, actor, "space", f.space)
		} else {
			f.grant(t, guid, "organization"+strings.TrimPrefix(actor, "org"), "organization", f.org)
		}
	}
	return f
}

func (f *permissionFixture) grant(t *testing.T, userGUID, roleType, targetKind, targetGUID string) {
	t.Helper()
	f.env.do(http.MethodPost, "/v3/roles", f.tokens["admin"], map[string]any{
		"type": roleType,
		"relationships": map[string]any{
			"user":     map[string]any{"data": map[string]any{"guid": userGUID}},
			targetKind: map[string]any{"data": map[string]any{"guid": targetGUID}},
		},
	}).expect(http.StatusCreated)
}

// unique returns a name no other matrix request has used.
func (f *permissionFixture) unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, f.seq.Add(1))
}

// permissionCase is one endpoint: how to call it and the status each actor
// gets. Actors not listed in want get the fallback status.
type permissionCase struct {
	name     string
	request  func(f *permissionFixture) (method, path string, body any)
	want     map[string]int
	fallback int
}

func statuses(status int, actors ...string) map[string]int {
	m := map[string]int{}
	for _, a := range actors {
		m[a] = status
	}
	return m
}

func merge(maps ...map[string]int) map[string]int {
	out := map[string]int{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

var (
	globalReaders = []string{"admin", "admin_read_only", "global_auditor"}
	orgMembers    = []string{"org_manager", "org_auditor", "org_billing_manager", "org_user",
		"space_manager", "space_developer", "space_auditor", "space_supporter"}
	spaceMembers = []string{"space_manager", "space_developer", "space_auditor", "space_supporter"}
)

func permissionCases() []permissionCase {
	return []permissionCase{
		{
			name: "get organization",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodGet, "/v3/organizations/" + f.org, nil
			},
			want:     merge(statuses(200, globalReaders...), statuses(200, orgMembers...)),
			fallback: 404,
		},
		{
			name: "update organization",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPatch, "/v3/organizations/" + f.org, map[string]any{"metadata": map[string]any{"labels": map[string]any{"touched": "yes"}}}
			},
			want:     merge(statuses(403, orgMembers...), statuses(403, "admin_read_only", "global_auditor"), statuses(200, "admin", "org_manager")),
			fallback: 404,
		},
		{
			name: "create organization",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPost, "/v3/organizations", map[string]any{"name": f.unique("org")}
			},
			want:     statuses(201, "admin"),
			fallback: 403,
		},
		{
			name: "delete organization",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodDelete, "/v3/organizations/" + f.org, nil
			},
			want:     merge(statuses(403, orgMembers...), statuses(403, "admin_read_only", "global_auditor"), statuses(202, "admin")),
			fallback: 404,
		},
		{
			name:     "get space",
			request:  func(f *permissionFixture) (string, string, any) { return http.MethodGet, "/v3/spaces/" + f.space, nil },
			want:     merge(statuses(200, globalReaders...), statuses(200, spaceMembers...), statuses(200, "org_manager")),
			fallback: 404,
		},
		{
			name: "create space",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPost, "/v3/spaces", map[string]any{
					"name":          f.unique("space"),
					"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": f.org}}},
				}
			},
			want:     merge(statuses(403, orgMembers...), statuses(403, "admin_read_only", "global_auditor"), statuses(201, "admin", "org_manager")),
			fallback: 422,
		},
		{
			name: "update space",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPatch, "/v3/spaces/" + f.space, map[string]any{"metadata": map[string]any{"labels": map[string]any{"touched": "yes"}}}
			},
			want: merge(statuses(403, spaceMembers...), statuses(403, "admin_read_only", "global_auditor"),
				statuses(200, "admin", "org_manager", "space_manager")),
			fallback: 404,
		},
		{
			name: "delete space",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodDelete, "/v3/spaces/" + f.space, nil
			},
			want: merge(statuses(403, spaceMembers...), statuses(403, "admin_read_only", "global_auditor"),
				statuses(202, "admin", "org_manager")),
			fallback: 404,
		},
		{
			name:     "list roles",
			request:  func(f *permissionFixture) (string, string, any) { return http.MethodGet, "/v3/roles", nil },
			fallback: 200,
		},
		{
			name: "create space role",
			request: func(f *permissionFixture) (string, string, any) {
				guid, _ := f.env.newUser(f.unique("target"))
				f.env.do(http.MethodPost, "/v3/roles", f.tokens["admin"], map[string]any{
					"type": "organization_user",
					"relationships": map[string]any{
						"user":         map[string]any{"data": map[string]any{"guid": guid}},
						"organization": map[string]any{"data": map[string]any{"guid": f.org}},
					},
				}).expect(http.StatusCreated)
				return http.MethodPost, "/v3/roles", map[string]any{
					"type": "space_auditor",
					"relationships": map[string]any{
						"user":  map[string]any{"data": map[string]any{"guid": guid}},
						"space": map[string]any{"data": map[string]any{"guid": f.space}},
					},
				}
			},
			want: merge(statuses(403, spaceMembers...), statuses(403, "admin_read_only", "global_auditor"),
				statuses(201, "admin", "org_manager", "space_manager")),
			fallback: 422,
		},
		{
			name: "create user",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPost, "/v3/users", map[string]any{"guid": f.unique("user-guid")}
			},
			want:     statuses(201, "admin"),
			fallback: 403,
		},
		{
			name:     "list users",
			request:  func(f *permissionFixture) (string, string, any) { return http.MethodGet, "/v3/users", nil },
			fallback: 200,
		},
		{
			name:     "list feature flags",
			request:  func(f *permissionFixture) (string, string, any) { return http.MethodGet, "/v3/feature_flags", nil },
			fallback: 200,
		},
		{
			name: "update feature flag",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPatch, "/v3/feature_flags/diego_docker", map[string]any{"enabled": false}
			},
			want:     statuses(200, "admin"),
			fallback: 403,
		},
		{
			name: "create organization quota",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodPost, "/v3/organization_quotas", map[string]any{"name": f.unique("quota")}
			},
			want:     statuses(201, "admin"),
			fallback: 403,
		},
		{
			name:     "list audit events",
			request:  func(f *permissionFixture) (string, string, any) { return http.MethodGet, "/v3/audit_events", nil },
			fallback: 200,
		},
		{
			name: "organization usage summary",
			request: func(f *permissionFixture) (string, string, any) {
				return http.MethodGet, "/v3/organizations/" + f.org + "/usage_summary", nil
			},
			want:     merge(statuses(200, globalReaders...), statuses(200, orgMembers...)),
			fallback: 404,
		},
	}
}

// TestPermissionMatrix checks every actor against every endpoint of the
// tenancy API: invisible resources are 404 and visible but forbidden ones
// 403, as in Cloud Controller.
func TestPermissionMatrix(t *testing.T) {
	f := newPermissionFixture(t)

	for _, tc := range permissionCases() {
		t.Run(tc.name, func(t *testing.T) {
			// Admin runs last so a successful delete cannot hide other cells.
			order := append(append([]string{}, permissionActors[1:]...), "admin")
			for _, actor := range order {
				want, ok := tc.want[actor]
				if !ok {
					want = tc.fallback
				}
				method, path, body := tc.request(f)
				resp := f.env.do(method, path, f.tokens[actor], body)
				if resp.Status != want {
					t.Errorf("%s %s as %s: status %d, want %d; body %s", method, path, actor, resp.Status, want, resp.Body)
				}
			}
		})
	}
}
