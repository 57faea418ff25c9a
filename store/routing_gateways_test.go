package store_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// gatewayFixture is two organizations with a space each, a private
// domain, a TCP domain and the default domains, in PostgreSQL.
type gatewayFixture struct {
	st                 *store.Store
	org, otherOrg      string
	space, otherSpace  string
	private, tcpDomain store.Domain
}

func newGatewayFixture(t *testing.T) gatewayFixture {
	t.Helper()
	ctx := t.Context()
	st := pgtest.NewStore(t)
	f := gatewayFixture{st: st}
	for _, org := range []*string{&f.org, &f.otherOrg} {
		o, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: uuid.NewString()})
		if err != nil {
			t.Fatal(err)
		}
		*org = o.GUID
	}
	for space, org := range map[*string]string{&f.space: f.org, &f.otherSpace: f.otherOrg} {
		sp, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: org})
		if err != nil {
			t.Fatal(err)
		}
		*space = sp.GUID
	}

	if err := st.EnsureDefaultRouting(ctx, "apps.example.com", "apps.internal", "1024-1033"); err != nil {
		t.Fatal(err)
	}
	groups, err := st.RouterGroups(ctx, store.DefaultTCPRouterGroup)
	if err != nil || len(groups) != 1 {
		t.Fatalf("router groups = %v, %v; want the default one", groups, err)
	}
	f.private, err = store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: "Shop.Example.org",
		OrganizationGUID: f.org, Annotations: map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	f.tcpDomain, err = store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: "tcp.example.com",
		RouterGroupGUID: groups[0].GUID})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGatewayDomainsSkipInternalAndTCP(t *testing.T) {
	f := newGatewayFixture(t)
	domains, err := f.st.GatewayDomains(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range domains {
		names = append(names, d.Name)
	}
	if diff := cmp.Diff([]string{"apps.example.com", "Shop.Example.org"}, names); diff != "" {
		t.Errorf("domain names (-want +got):\n%s", diff)
	}

	want := store.GatewayDomain{GUID: f.private.GUID, Name: "Shop.Example.org", OrganizationGUID: f.org,
		Annotations: map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}}
	if diff := cmp.Diff(want, domains[1]); diff != "" {
		t.Errorf("private domain (-want +got):\n%s", diff)
	}
	if domains[0].OrganizationGUID != "" {
		t.Errorf("shared domain has organization %q, want none", domains[0].OrganizationGUID)
	}
}

func TestGatewayPortRoutesListTCPAndUDP(t *testing.T) {
	f := newGatewayFixture(t)
	ctx := t.Context()
	shared, err := f.st.DefaultDomain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func(r store.Route) string {
		t.Helper()
		r.GUID = uuid.NewString()
		if _, err := store.CreateRoute(ctx, f.st.DB(), r); err != nil {
			t.Fatal(err)
		}
		return r.GUID
	}
	create(store.Route{Host: "web", Protocol: store.RouteProtocolHTTP, DomainGUID: shared.GUID, SpaceGUID: f.space})
	udp := uuid.NewString()
	_, err = f.st.DB().ExecContext(ctx, `INSERT INTO routes (guid, port, protocol, domain_guid, router_group_guid, space_guid)
		VALUES ($1, 1024, 'udp', $2, $3, $4)`, udp, f.tcpDomain.GUID, f.tcpDomain.RouterGroupGUID, f.otherSpace)
	if err != nil {
		t.Fatal(err)
	}
	tcp := create(store.Route{Port: 1025, Protocol: store.RouteProtocolTCP, DomainGUID: f.tcpDomain.GUID,
		RouterGroupGUID: f.tcpDomain.RouterGroupGUID, SpaceGUID: f.space})

	got, err := f.st.GatewayPortRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.GatewayPortRoute{
		{GUID: tcp, Protocol: "tcp", Port: 1025, DomainName: "tcp.example.com", SpaceGUID: f.space, OrgGUID: f.org},
		{GUID: udp, Protocol: "udp", Port: 1024, DomainName: "tcp.example.com", SpaceGUID: f.otherSpace, OrgGUID: f.otherOrg},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("port routes (-want +got):\n%s", diff)
	}
}

func TestAllCertificatesIgnoreVisibility(t *testing.T) {
	f := newGatewayFixture(t)
	ctx := t.Context()
	notAfter := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, domain := range []string{"shop.example.org", "apps.example.com"} {
		if _, err := f.st.CreateCertificate(ctx, testCertificate(domain, notAfter), certificateEvent("audit.certificate.create")); err != nil {
			t.Fatal(err)
		}
	}

	got, err := f.st.AllCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var domains []string
	for _, c := range got {
		domains = append(domains, c.DomainName)
	}
	if diff := cmp.Diff([]string{"apps.example.com", "shop.example.org"}, domains); diff != "" {
		t.Errorf("certificate domains (-want +got):\n%s", diff)
	}
	if len(got) > 0 && len(got[0].EncryptedPrivateKey) == 0 {
		t.Error("certificate read without its sealed key")
	}
}
