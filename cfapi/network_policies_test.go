package cfapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// networkPolicyFixture is an appFixture with the apps web and api in the
// space dev and the app billing in the space prod, where the developer has
// no role. It also has the app foreign in another organization, whose
// space developer has no role in acme.
type networkPolicyFixture struct {
	*appFixture
	web, api, prodApp, otherApp string
	// otherDeveloper is a space developer in the other organization.
	otherDeveloper string
}

func newNetworkPolicyFixture(t *testing.T) *networkPolicyFixture {
	t.Helper()
	f := &networkPolicyFixture{appFixture: newAppFixture(t)}
	f.web = f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.api = f.app(appBody("api", f.spaceGUID))["guid"].(string)
	prod := f.space(f.orgGUID, "prod")
	f.prodApp = f.app(appBody("billing", prod))["guid"].(string)

	otherOrg := f.org("globex")
	otherSpace := f.space(otherOrg, "main")
	f.otherApp = f.app(appBody("foreign", otherSpace))["guid"].(string)
	guid, token := f.env.newUser("other-developer")
	f.grant(guid, roleOrgUser, otherOrg, "")
	f.grant(guid, roleSpaceDeveloper, otherOrg, otherSpace)
	f.otherDeveloper = token
	return f
}

// policyBody is a create or delete body with one policy.
func policyBody(source, destination, protocol string, start, end int) map[string]any {
	return map[string]any{"policies": []any{map[string]any{
		"source":      map[string]any{"id": source},
		"destination": map[string]any{"id": destination, "protocol": protocol, "ports": map[string]any{"start": start, "end": end}},
	}}}
}

// policyList is the list body as the cf CLI decodes it.
type policyList struct {
	TotalPolicies int `json:"total_policies"`
	Policies      []struct {
		Source struct {
			ID string `json:"id"`
		} `json:"source"`
		Destination struct {
			ID       string `json:"id"`
			Protocol string `json:"protocol"`
			Ports    struct {
				Start int `json:"start"`
				End   int `json:"end"`
			} `json:"ports"`
		} `json:"destination"`
	} `json:"policies"`
}

// summaries renders each policy as "source>destination protocol start-end"
// with the app names of names.
func (l policyList) summaries(names map[string]string) []string {
	out := []string{}
	for _, p := range l.Policies {
		d := p.Destination
		out = append(out, names[p.Source.ID]+">"+names[d.ID]+" "+d.Protocol+" "+strconv.Itoa(d.Ports.Start)+"-"+strconv.Itoa(d.Ports.End))
	}
	return out
}

func (f *networkPolicyFixture) listPolicies(token, query string) policyList {
	f.t.Helper()
	var list policyList
	f.env.do(http.MethodGet, "/networking/v1/external/policies"+query, token, nil).expect(http.StatusOK).decode(&list)
	if list.TotalPolicies != len(list.Policies) {
		f.t.Errorf("total_policies = %d, want %d", list.TotalPolicies, len(list.Policies))
	}
	return list
}

// policyErrorMessage returns the message of a policy server error body.
func policyErrorMessage(t *testing.T, r *testResponse) string {
	t.Helper()
	var body map[string]string
	r.decode(&body)
	if body["error"] == "" {
		t.Fatalf("body %s has no error message", r.Body)
	}
	return body["error"]
}

func TestNetworkPolicyCreateListDelete(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	env := f.env
	names := map[string]string{f.web: "web", f.api: "api", f.prodApp: "billing"}
	const path = "/networking/v1/external/policies"

	created := env.do(http.MethodPost, path, f.developer, policyBody(f.web, f.api, "tcp", 8080, 8080)).expect(http.StatusOK)
	if got := strings.TrimSpace(string(created.Body)); got != "{}" {
		t.Errorf("create body = %s, want {}", got)
	}
	// A repeated create succeeds and adds nothing.
	env.do(http.MethodPost, path, f.developer, policyBody(f.web, f.api, "tcp", 8080, 8080)).expect(http.StatusOK)
	env.do(http.MethodPost, path, f.developer, policyBody(f.api, f.web, "udp", 5000, 5010)).expect(http.StatusOK)
	env.do(http.MethodPost, path, f.admin, policyBody(f.prodApp, f.api, "tcp", 9000, 9001)).expect(http.StatusOK)

	all := f.listPolicies(f.developer, "")
	want := []string{"web>api tcp 8080-8080", "api>web udp 5000-5010", "billing>api tcp 9000-9001"}
	if diff := cmp.Diff(want, all.summaries(names)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// The cf CLI lists by the source apps of a space with ?id=.
	byID := f.listPolicies(f.developer, "?id="+f.prodApp+","+f.web)
	want = []string{"web>api tcp 8080-8080", "api>web udp 5000-5010", "billing>api tcp 9000-9001"}
	if diff := cmp.Diff(want, byID.summaries(names)); diff != "" {
		t.Errorf("list ?id=billing,web (-want +got):\n%s", diff)
	}
	byID = f.listPolicies(f.developer, "?id="+f.prodApp)
	if diff := cmp.Diff([]string{"billing>api tcp 9000-9001"}, byID.summaries(names)); diff != "" {
		t.Errorf("list ?id=billing (-want +got):\n%s", diff)
	}

	// A user of another organization gets an empty list.
	if got := f.listPolicies(f.otherDeveloper, "").Policies; len(got) != 0 {
		t.Errorf("list as a user of another organization = %+v, want none", got)
	}

	env.do(http.MethodPost, path+"/delete", f.developer, policyBody(f.web, f.api, "tcp", 8080, 8080)).expect(http.StatusOK)
	// Deleting a policy that does not exist succeeds.
	env.do(http.MethodPost, path+"/delete", f.developer, policyBody(f.web, f.api, "tcp", 8080, 8080)).expect(http.StatusOK)
	all = f.listPolicies(f.admin, "")
	want = []string{"api>web udp 5000-5010", "billing>api tcp 9000-9001"}
	if diff := cmp.Diff(want, all.summaries(names)); diff != "" {
		t.Errorf("list after delete (-want +got):\n%s", diff)
	}
}

func TestNetworkPolicyPermissions(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	const path = "/networking/v1/external/policies"
	for _, c := range []struct {
		name        string
		token       string
		source      string
		destination string
		status      int
		message     string
	}{
		{"admin", f.admin, f.web, f.otherApp, http.StatusOK, ""},
		{"space developer", f.developer, f.web, f.api, http.StatusOK, ""},
		{"space auditor", f.auditor, f.web, f.api, http.StatusForbidden, "needs the SpaceDeveloper role"},
		{"space supporter", f.supporter, f.web, f.api, http.StatusForbidden, "needs the SpaceDeveloper role"},
		{"org manager", f.orgManager, f.web, f.api, http.StatusForbidden, "needs the SpaceDeveloper role"},
		{"read-only admin", f.readOnlyAdmin, f.web, f.api, http.StatusForbidden, "cloud_controller.write"},
		{"developer without a role at the destination", f.developer, f.web, f.prodApp, http.StatusForbidden,
			"policies[0].destination.id"},
		{"other organization's developer to this app", f.otherDeveloper, f.otherApp, f.web, http.StatusForbidden,
			"policies[0].destination.id"},
		{"other organization's developer from this app", f.otherDeveloper, f.web, f.otherApp, http.StatusForbidden,
			"policies[0].source.id"},
		{"stranger", f.stranger, f.web, f.api, http.StatusForbidden, "no app with this GUID exists that you can see"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, endpoint := range []string{path, path + "/delete"} {
				resp := f.env.do(http.MethodPost, endpoint, c.token, policyBody(c.source, c.destination, "tcp", 8080, 8080)).expect(c.status)
				if c.message == "" {
					continue
				}
				if msg := policyErrorMessage(t, resp); !strings.Contains(msg, c.message) {
					t.Errorf("POST %s error = %q, want it to contain %q", endpoint, msg, c.message)
				}
			}
		})
	}
	// Each permitted create was deleted again, and the refused deletes
	// could not remove what a refused create might have stored.
	if got := f.listPolicies(f.admin, "").Policies; len(got) != 0 {
		t.Errorf("policies = %+v, want none", got)
	}
}

func TestNetworkPolicyRejectsBadInput(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	const path = "/networking/v1/external/policies"
	for _, c := range []struct {
		name    string
		body    any
		message string
	}{
		{"port zero", policyBody(f.web, f.api, "tcp", 0, 0), "policies[0].destination.ports.start 0 is invalid; use a port from 1 to 65535"},
		{"port too high", policyBody(f.web, f.api, "tcp", 8080, 65536), "policies[0].destination.ports.end 65536 is invalid"},
		{"start after end", policyBody(f.web, f.api, "udp", 9000, 8000), "ports.start 9000 is greater than end 8000"},
		{"bad protocol", policyBody(f.web, f.api, "icmp", 80, 80), `protocol "icmp" is invalid; use "tcp" or "udp"`},
		{"missing source", map[string]any{"policies": []any{map[string]any{
			"destination": map[string]any{"id": f.api, "protocol": "tcp", "ports": map[string]any{"start": 1, "end": 2}}}}},
			"policies[0].source.id is missing"},
		{"missing ports", map[string]any{"policies": []any{map[string]any{"source": map[string]any{"id": f.web},
			"destination": map[string]any{"id": f.api, "protocol": "tcp"}}}}, "destination.ports is missing"},
		{"port as a string", `{"policies":[{"source":{"id":"a"},"destination":{"id":"b","protocol":"tcp","ports":{"start":"80","end":80}}}]}`,
			"policies.destination.ports.start must be a number"},
		{"unknown field", `{"policies":[{"source":{"id":"a","name":"web"}}]}`, `unknown field "name"`},
		{"empty list", map[string]any{"policies": []any{}}, "policies is missing or empty"},
		{"no body", "", "the request body is empty"},
		{"not JSON", "{", "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, path, f.developer, c.body).expect(http.StatusBadRequest)
			if msg := policyErrorMessage(t, resp); !strings.Contains(msg, c.message) {
				t.Errorf("error = %q, want it to contain %q", msg, c.message)
			}
		})
	}

	resp := f.env.do(http.MethodGet, path+"?source_id="+f.web, f.developer, nil).expect(http.StatusBadRequest)
	if msg := policyErrorMessage(t, resp); !strings.Contains(msg, "Unknown query parameter(s): 'source_id'") {
		t.Errorf("unknown query parameter error = %q", msg)
	}
	// An unknown app is refused without telling whether it exists.
	resp = f.env.do(http.MethodPost, path, f.admin, policyBody(f.web, "no-such-app", "tcp", 80, 80)).expect(http.StatusForbidden)
	if msg := policyErrorMessage(t, resp); !strings.Contains(msg, `policies[0].destination.id "no-such-app"`) {
		t.Errorf("unknown app error = %q", msg)
	}
	if got := f.listPolicies(f.admin, "").Policies; len(got) != 0 {
		t.Errorf("policies after bad requests = %+v, want none", got)
	}
}
