package cfapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestUDPRouteCreate(t *testing.T) {
	f := newRoutingFixture(t)

	tcp := f.createRoute(f.developer, routeBody(f.spaceGUID, f.tcpDomain, "", ""))
	body := routeBody(f.spaceGUID, f.tcpDomain, "", "")
	body["protocol"] = "udp"
	udp := f.createRoute(f.developer, body)
	// Ports are unique per protocol, so the first UDP route gets the
	// first port as the TCP route did.
	if udp.Protocol != "udp" || udp.Port == nil || *udp.Port != 1024 || udp.URL != "tcp.ferry.test:1024" {
		t.Errorf("UDP route = %+v, want protocol udp on port 1024", udp)
	}
	if tcp.Protocol != "tcp" || tcp.Port == nil || *tcp.Port != 1024 {
		t.Errorf("TCP route = %+v, want port 1024", tcp)
	}

	body["port"] = 1026
	withPort := f.createRoute(f.developer, body)
	if withPort.Protocol != "udp" || withPort.URL != "tcp.ferry.test:1026" {
		t.Errorf("UDP route with a port = %+v", withPort)
	}
	_, _, detail := f.env.do(http.MethodPost, "/v3/routes", f.developer, body).expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Route already exists with port '1026' for domain 'tcp.ferry.test'." {
		t.Errorf("duplicate UDP route: detail = %q", detail)
	}

	explicit := routeBody(f.spaceGUID, f.tcpDomain, "", "")
	explicit["protocol"] = "tcp"
	if rt := f.createRoute(f.developer, explicit); rt.Protocol != "tcp" || *rt.Port != 1025 {
		t.Errorf("route with protocol tcp = %+v, want a TCP route on port 1025", rt)
	}
	httpBody := routeBody(f.spaceGUID, f.sharedDomain, "web", "")
	httpBody["protocol"] = "http"
	if rt := f.createRoute(f.developer, httpBody); rt.Protocol != "http" {
		t.Errorf("route with protocol http = %+v", rt)
	}

	var list struct{ Resources []routeJSON }
	f.env.do(http.MethodGet, "/v3/routes?ports=1026", f.developer, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || list.Resources[0].GUID != withPort.GUID {
		t.Errorf("routes on port 1026 = %+v, want the UDP route", list.Resources)
	}
}

func TestUDPRouteCreateRejectsBadProtocol(t *testing.T) {
	f := newRoutingFixture(t)
	cases := []struct {
		name, domain, protocol string
		contains               []string
	}{
		{"udp on an HTTP domain", f.sharedDomain, "udp", []string{"Protocol 'udp'", "'apps.ferry.test'", "TCP domain"}},
		{"tcp on an HTTP domain", f.sharedDomain, "tcp", []string{"Protocol 'tcp'", "use protocol 'http'"}},
		{"http on a TCP domain", f.tcpDomain, "http", []string{"Protocol 'http'", "'tcp' or 'udp'"}},
		{"unknown protocol", f.tcpDomain, "sctp", []string{"Protocol 'sctp'", "'tcp' or 'udp'"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := ""
			if c.domain == f.sharedDomain {
				host = "app"
			}
			body := routeBody(f.spaceGUID, c.domain, host, "")
			body["protocol"] = c.protocol
			_, _, detail := f.env.do(http.MethodPost, "/v3/routes", f.developer, body).expect(http.StatusUnprocessableEntity).cfError()
			for _, part := range c.contains {
				if !strings.Contains(detail, part) {
					t.Errorf("detail = %q, want it to contain %q", detail, part)
				}
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM routes`); n != 0 {
		t.Errorf("routes after rejected requests = %d, want 0", n)
	}
}

func TestUDPRouteDestinations(t *testing.T) {
	f := newRoutingFixture(t)
	app := f.app(appBody("dns", f.spaceGUID))["guid"].(string)
	body := routeBody(f.spaceGUID, f.tcpDomain, "", "")
	body["protocol"] = "udp"
	udp := f.createRoute(f.developer, body)
	web := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "web", ""))

	var list struct {
		Destinations []destinationJSON `json:"destinations"`
	}
	f.env.do(http.MethodPost, "/v3/routes/"+udp.GUID+"/destinations", f.developer,
		map[string]any{"destinations": []any{map[string]any{"app": map[string]any{"guid": app}, "port": 5353}}}).
		expect(http.StatusOK).decode(&list)
	if len(list.Destinations) != 1 || list.Destinations[0].Protocol != "udp" || list.Destinations[0].Port != 5353 {
		t.Errorf("UDP route destinations = %+v, want one of protocol udp on port 5353", list.Destinations)
	}

	cases := []struct {
		name, route, protocol, detail string
	}{
		{"tcp on a UDP route", udp.GUID, "tcp",
			"Destination protocol must be 'udp' if the parent route's protocol is 'udp': leave protocol out or send 'udp'"},
		{"http1 on a UDP route", udp.GUID, "http1",
			"Destination protocol must be 'udp' if the parent route's protocol is 'udp': leave protocol out or send 'udp'"},
		{"udp on an HTTP route", web.GUID, "udp",
			"Destination protocol must be 'http1' or 'http2' if the parent route's protocol is 'http'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest := map[string]any{"app": map[string]any{"guid": app}, "protocol": c.protocol}
			_, _, detail := f.env.do(http.MethodPatch, "/v3/routes/"+c.route+"/destinations", f.developer,
				map[string]any{"destinations": []any{dest}}).expect(http.StatusUnprocessableEntity).cfError()
			if detail != c.detail {
				t.Errorf("detail = %q, want %q", detail, c.detail)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM route_destinations`); n != 1 {
		t.Errorf("destinations after rejected requests = %d, want 1", n)
	}
}
