package cfapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

func TestDefaultDomainsAndRouterGroups(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env

	shared := env.do(http.MethodGet, "/v3/domains/"+f.sharedDomain, f.orgUser, nil).expect(http.StatusOK).object()
	self := env.server.URL + "/v3/domains/" + f.sharedDomain
	want := map[string]any{
		"guid": f.sharedDomain, "name": "apps.ferry.test", "internal": false, "router_group": nil,
		"supported_protocols": []any{"http"},
		"metadata":            map[string]any{"labels": map[string]any{}, "annotations": map[string]any{}},
		"relationships": map[string]any{
			"organization":         map[string]any{"data": nil},
			"shared_organizations": map[string]any{"data": []any{}},
		},
		"links": map[string]any{
			"self":               map[string]any{"href": self},
			"route_reservations": map[string]any{"href": self + "/route_reservations"},
		},
	}
	delete(shared, "created_at")
	delete(shared, "updated_at")
	if diff := cmp.Diff(want, shared); diff != "" {
		t.Errorf("default domain (-want +got):\n%s", diff)
	}

	var internal domainJSON
	env.do(http.MethodGet, "/v3/domains/"+f.internalDomain, f.admin, nil).expect(http.StatusOK).decode(&internal)
	if !internal.Internal {
		t.Errorf("apps.internal: internal = false, want true")
	}
	var tcp domainJSON
	env.do(http.MethodGet, "/v3/domains/"+f.tcpDomain, f.admin, nil).expect(http.StatusOK).decode(&tcp)
	if tcp.RouterGroup == nil || tcp.RouterGroup.GUID != f.routerGroup || !cmp.Equal(tcp.SupportedProtocols, []string{"tcp"}) {
		t.Errorf("TCP domain = %+v, want the router group and protocol tcp", tcp)
	}

	var def domainJSON
	env.do(http.MethodGet, "/v3/organizations/"+f.orgGUID+"/domains/default", f.orgUser, nil).expect(http.StatusOK).decode(&def)
	if def.GUID != f.sharedDomain {
		t.Errorf("default domain of the org = %s, want %s", def.Name, "apps.ferry.test")
	}

	var groups []routerGroupJSON
	env.do(http.MethodGet, "/routing/v1/router_groups?name=default-tcp", f.developer, nil).expect(http.StatusOK).decode(&groups)
	if diff := cmp.Diff([]routerGroupJSON{{GUID: f.routerGroup, Name: "default-tcp", Type: "tcp", ReservablePorts: "1024-1026"}}, groups); diff != "" {
		t.Errorf("router groups (-want +got):\n%s", diff)
	}
	missing := env.do(http.MethodGet, "/routing/v1/router_groups?name=nope", f.developer, nil).expect(http.StatusNotFound).object()
	if missing["name"] != "ResourceNotFoundError" {
		t.Errorf("unknown router group: body = %v", missing)
	}

	// Starting again keeps the domains and applies a new port range.
	if err := env.store.EnsureDefaultRouting(t.Context(), "apps.ferry.test", "apps.internal", "2000-2010"); err != nil {
		t.Fatal(err)
	}
	env.do(http.MethodGet, "/routing/v1/router_groups/"+f.routerGroup, f.developer, nil).expect(http.StatusOK).decode(&groups[0])
	if groups[0].ReservablePorts != "2000-2010" {
		t.Errorf("ports after restart = %q, want 2000-2010", groups[0].ReservablePorts)
	}
	if n := f.count(`SELECT count(*) FROM domains WHERE name IN ('apps.ferry.test', 'apps.internal')`); n != 2 {
		t.Errorf("default domains after restart = %d, want 2", n)
	}
}

func TestDomainCreateRejectsBadInput(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	org := map[string]any{"organization": map[string]any{"data": map[string]any{"guid": f.orgGUID}}}

	cases := []struct {
		name   string
		body   map[string]any
		detail string
	}{
		{"missing name", map[string]any{}, "Name can't be blank"},
		{"no dot", map[string]any{"name": "localhost"}, `Name must contain at least one "."`},
		{"too short", map[string]any{"name": "a."}, "Name is too short (minimum is 3 characters), Name does not comply with RFC 1035 standards"},
		{"bad characters", map[string]any{"name": "shop_1.example.com"},
			"Name does not comply with RFC 1035 standards, Name must consist of alphanumeric characters and hyphens"},
		{"long label", map[string]any{"name": strings.Repeat("a", 64) + ".com"},
			"Name does not comply with RFC 1035 standards, Name subdomains must each be at most 63 characters"},
		{"leading hyphen", map[string]any{"name": "-shop.example.com"}, "Name does not comply with RFC 1035 standards"},
		{"taken", map[string]any{"name": "APPS.ferry.test"}, `The domain name "apps.ferry.test" is already in use`},
		{"internal with org", map[string]any{"name": "x.example.com", "internal": true, "relationships": org},
			"Cannot associate an internal domain with an organization"},
		{"org with router group", map[string]any{"name": "x.example.com", "relationships": org,
			"router_group": map[string]any{"guid": f.routerGroup}}, "Domains scoped to an organization cannot be associated to a router group."},
		{"unknown router group", map[string]any{"name": "x.example.com", "router_group": map[string]any{"guid": "nope"}},
			"Router group with guid 'nope' not found."},
		{"unknown org", map[string]any{"name": "x.example.com", "relationships": map[string]any{
			"organization": map[string]any{"data": map[string]any{"guid": "nope"}}}},
			"Organization with guid 'nope' does not exist or you do not have access to it."},
		{"shared orgs without owner", map[string]any{"name": "x.example.com", "relationships": map[string]any{
			"shared_organizations": map[string]any{"data": []any{map[string]any{"guid": f.orgGUID}}}}},
			"Relationships cannot contain shared_organizations without an owning organization."},
		{"shared with owner", map[string]any{"name": "x.example.com", "relationships": map[string]any{
			"organization":         map[string]any{"data": map[string]any{"guid": f.orgGUID}},
			"shared_organizations": map[string]any{"data": []any{map[string]any{"guid": f.orgGUID}}}}},
			"Domain cannot be shared with owning organization."},
	}
	before := f.count(`SELECT count(*) FROM domains`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, detail := env.do(http.MethodPost, "/v3/domains", f.admin, c.body).expect(http.StatusUnprocessableEntity).cfError()
			if code != 10008 {
				t.Errorf("code = %d, want 10008", code)
			}
			if detail != c.detail {
				t.Errorf("detail = %q, want %q", detail, c.detail)
			}
		})
	}
	if after := f.count(`SELECT count(*) FROM domains`); after != before {
		t.Errorf("domains after rejected creates = %d, want %d", after, before)
	}
}

func TestDomainCreatePermissions(t *testing.T) {
	f := newRoutingFixture(t)
	private := func(name string) map[string]any {
		return map[string]any{"name": name, "relationships": map[string]any{
			"organization": map[string]any{"data": map[string]any{"guid": f.orgGUID}}}}
	}
	for _, c := range []struct {
		name          string
		token         string
		shared, owned int
	}{
		{"admin", f.admin, http.StatusCreated, http.StatusCreated},
		{"org manager", f.orgManager, http.StatusForbidden, http.StatusCreated},
		{"org user", f.orgUser, http.StatusForbidden, http.StatusForbidden},
		{"space developer", f.developer, http.StatusForbidden, http.StatusForbidden},
		{"global auditor", f.globalAuditor, http.StatusForbidden, http.StatusForbidden},
		{"stranger", f.stranger, http.StatusForbidden, http.StatusUnprocessableEntity},
	} {
		t.Run(c.name, func(t *testing.T) {
			label := strings.ReplaceAll(c.name, " ", "-")
			f.env.do(http.MethodPost, "/v3/domains", c.token, map[string]any{"name": label + ".shared.test"}).expect(c.shared)
			f.env.do(http.MethodPost, "/v3/domains", c.token, private(label+".private.test")).expect(c.owned)
		})
	}
}

func TestPrivateDomainSharing(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	other := f.org("other")
	otherSpace := f.space(other, "web")

	names := func(orgGUID string) []string {
		t.Helper()
		var list struct {
			Resources []domainJSON `json:"resources"`
		}
		env.do(http.MethodGet, "/v3/organizations/"+orgGUID+"/domains?order_by=name", f.admin, nil).expect(http.StatusOK).decode(&list)
		out := []string{}
		for _, d := range list.Resources {
			out = append(out, d.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"apps.ferry.test", "apps.internal", "tcp.ferry.test"}, names(other)); diff != "" {
		t.Errorf("domains of the other org (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"acme.example.com", "apps.ferry.test", "apps.internal", "tcp.ferry.test"}, names(f.orgGUID)); diff != "" {
		t.Errorf("domains of the owner (-want +got):\n%s", diff)
	}

	base := "/v3/domains/" + f.privateDomain + "/relationships/shared_organizations"
	share := map[string]any{"data": []any{map[string]any{"guid": other}}}
	// The owner's manager does not manage the other org.
	env.do(http.MethodPost, base, f.orgManager, share).expect(http.StatusUnprocessableEntity)
	var shared toMany
	env.do(http.MethodPost, base, f.admin, share).expect(http.StatusOK).decode(&shared)
	if len(shared.Data) != 1 || shared.Data[0].GUID != other {
		t.Errorf("shared organizations = %+v, want the other org", shared.Data)
	}
	if diff := cmp.Diff([]string{"acme.example.com", "apps.ferry.test", "apps.internal", "tcp.ferry.test"}, names(other)); diff != "" {
		t.Errorf("domains of the other org after sharing (-want +got):\n%s", diff)
	}
	_, _, detail := env.do(http.MethodPost, "/v3/domains/"+f.sharedDomain+"/relationships/shared_organizations", f.admin, share).
		expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Domains cannot be shared with other organizations unless they are scoped to an organization." {
		t.Errorf("share a shared domain: detail = %q", detail)
	}
	owner := map[string]any{"data": []any{map[string]any{"guid": f.orgGUID}}}
	_, _, detail = env.do(http.MethodPost, base, f.admin, owner).expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Domain cannot be shared with owning organization." {
		t.Errorf("share with the owner: detail = %q", detail)
	}

	// The other org's routes keep the domain until they are gone.
	rt := f.createRoute(f.admin, routeBody(otherSpace, f.privateDomain, "guest", ""))
	_, _, detail = env.do(http.MethodDelete, base+"/"+other, f.admin, nil).expect(http.StatusUnprocessableEntity).cfError()
	if !strings.Contains(detail, "associated routes") {
		t.Errorf("unshare with routes: detail = %q", detail)
	}
	_, _, detail = env.do(http.MethodDelete, "/v3/domains/"+f.privateDomain, f.admin, nil).expect(http.StatusUnprocessableEntity).cfError()
	if detail != "This domain is shared with other organizations. Unshare before deleting." {
		t.Errorf("delete a shared private domain: detail = %q", detail)
	}
	resp := env.do(http.MethodDelete, "/v3/routes/"+rt.GUID, f.admin, nil).expect(http.StatusAccepted)
	f.runJobs(resp.Header.Get("Location"))
	env.do(http.MethodDelete, base+"/"+other, f.admin, nil).expect(http.StatusNoContent)
	env.do(http.MethodDelete, base+"/"+other, f.admin, nil).expect(http.StatusUnprocessableEntity)

	// Deleting the domain deletes its routes.
	owned := f.createRoute(f.developer, routeBody(f.spaceGUID, f.privateDomain, "shop", ""))
	env.do(http.MethodDelete, "/v3/domains/"+f.privateDomain, f.developer, nil).expect(http.StatusForbidden)
	resp = env.do(http.MethodDelete, "/v3/domains/"+f.privateDomain, f.orgManager, nil).expect(http.StatusAccepted)
	f.runJobs(resp.Header.Get("Location"))
	env.do(http.MethodGet, "/v3/domains/"+f.privateDomain, f.admin, nil).expect(http.StatusNotFound)
	env.do(http.MethodGet, "/v3/routes/"+owned.GUID, f.admin, nil).expect(http.StatusNotFound)

	var types []string
	for _, ev := range f.events(f.privateDomain) {
		types = append(types, ev.Type)
	}
	want := []string{"audit.domain.create", "audit.domain.share", "audit.domain.unshare", "audit.domain.delete-request"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("domain events (-want +got):\n%s", diff)
	}
}

func TestDomainUpdateAndVisibility(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	env.do(http.MethodGet, "/v3/domains/"+f.privateDomain, f.stranger, nil).expect(http.StatusNotFound)
	env.do(http.MethodGet, "/v3/domains/"+f.privateDomain, f.developer, nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/v3/domains/"+f.sharedDomain, f.stranger, nil).expect(http.StatusOK)

	var list struct {
		Resources []domainJSON `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/domains?organization_guids="+f.orgGUID, f.stranger, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 0 {
		t.Errorf("private domains seen by a stranger = %+v, want none", list.Resources)
	}

	body := map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "web"}}}
	env.do(http.MethodPatch, "/v3/domains/"+f.privateDomain, f.developer, body).expect(http.StatusForbidden)
	env.do(http.MethodPatch, "/v3/domains/"+f.sharedDomain, f.orgManager, body).expect(http.StatusForbidden)
	var d domainJSON
	env.do(http.MethodPatch, "/v3/domains/"+f.privateDomain, f.orgManager, body).expect(http.StatusOK).decode(&d)
	if d.Metadata.Labels["team"] != "web" {
		t.Errorf("labels after update = %v", d.Metadata.Labels)
	}
	env.do(http.MethodGet, "/v3/domains?label_selector=team=web", f.developer, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || list.Resources[0].GUID != f.privateDomain {
		t.Errorf("domains with team=web = %+v", list.Resources)
	}
}

func TestDomainCreateReservedNames(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	other := f.org("other")
	f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "taken", ""))
	before := f.count(`SELECT count(*) FROM domains`)

	cases := []struct {
		body   map[string]any
		detail string
	}{
		{
			map[string]any{"name": "sub.acme.example.com",
				"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": other}}}},
			`The domain name "sub.acme.example.com" cannot be created because "acme.example.com" is already reserved by another domain`,
		},
		{
			map[string]any{"name": "sub.acme.example.com"},
			`The domain name "sub.acme.example.com" cannot be created because "acme.example.com" is already reserved by another domain`,
		},
		{
			map[string]any{"name": "taken.apps.ferry.test"},
			`The domain name "taken.apps.ferry.test" cannot be created because "taken.apps.ferry.test" is already reserved by a route`,
		},
	}
	for _, tc := range cases {
		_, _, detail := env.do(http.MethodPost, "/v3/domains", f.admin, tc.body).expect(http.StatusUnprocessableEntity).cfError()
		if detail != tc.detail {
			t.Errorf("create %v: detail = %q, want %q", tc.body["name"], detail, tc.detail)
		}
	}
	if n := f.count(`SELECT count(*) FROM domains`); n != before {
		t.Errorf("domains after rejected creates = %d, want %d", n, before)
	}

	// Cloud Controller lets the owner add subdomains and anyone allowed to
	// create a domain add one under a shared domain.
	f.createDomain(f.orgManager, map[string]any{"name": "sub.acme.example.com",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": f.orgGUID}}}})
	f.createDomain(f.admin, map[string]any{"name": "team.apps.ferry.test"})
}

func TestDomainDeleteDeletesCertificate(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	notAfter := time.Now().AddDate(1, 0, 0)
	record := store.Certificate{
		GUID: uuid.NewString(), DomainName: "acme.example.com", ChainPEM: "chain", EncryptedPrivateKey: []byte{1},
		NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter,
	}
	cert, err := env.store.CreateCertificate(t.Context(), record, store.AuditEvent{Type: "audit.certificate.create", ActorType: "user"})
	if err != nil {
		t.Fatal(err)
	}

	resp := env.do(http.MethodDelete, "/v3/domains/"+f.privateDomain, f.orgManager, nil).expect(http.StatusAccepted)
	f.runJobs(resp.Header.Get("Location"))
	if n := f.count(`SELECT count(*) FROM certificates WHERE domain_name = 'acme.example.com'`); n != 0 {
		t.Errorf("certificates of the deleted domain = %d, want 0", n)
	}
	var types []string
	for _, ev := range f.events(cert.GUID) {
		types = append(types, ev.Type)
	}
	if diff := cmp.Diff([]string{"audit.certificate.create", "audit.certificate.delete"}, types); diff != "" {
		t.Errorf("certificate events (-want +got):\n%s", diff)
	}
}
