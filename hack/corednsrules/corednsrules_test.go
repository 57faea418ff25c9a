package corednsrules

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrycf/ferry/k8sbackend"
)

// shellRules runs coredns_rewrites from hack/lib/configs.sh and returns its
// output, and the INTERNAL_ROUTE_DOMAINS entries it rendered.
func shellRules(t *testing.T) (string, []string) {
	t.Helper()
	script := `source ../lib/common.sh && source ../lib/configs.sh && coredns_rewrites && printf '%s\n' "${INTERNAL_ROUTE_DOMAINS[@]}" >&2`
	cmd := exec.Command("bash", "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("coredns_rewrites failed: %v\n%s", err, stderr.String())
	}
	return string(out), strings.Fields(stderr.String())
}

func TestShellRulesMatchRenderCoreDNSRewrites(t *testing.T) {
	got, entries := shellRules(t)
	if len(entries) < 2 {
		t.Fatalf("INTERNAL_ROUTE_DOMAINS = %v, want the run and e2e domains", entries)
	}

	var want strings.Builder
	for _, entry := range entries {
		domain, namespace, ok := strings.Cut(entry, "=")
		if !ok {
			t.Fatalf("INTERNAL_ROUTE_DOMAINS entry %q is not DOMAIN=NAMESPACE", entry)
		}
		rules, err := k8sbackend.RenderCoreDNSRewrites([]string{domain}, k8sbackend.InternalRouteConfig{Namespace: namespace, ClusterDomain: "cluster.local"})
		if err != nil {
			t.Fatalf("RenderCoreDNSRewrites(%q): %v", domain, err)
		}
		want.WriteString(rules)
	}

	if got != want.String() {
		t.Errorf("coredns_rewrites output:\n%s\nRenderCoreDNSRewrites:\n%s", got, want.String())
	}
}

func TestShellRulesCoverEnvironmentDomains(t *testing.T) {
	got, _ := shellRules(t)
	for _, want := range []string{
		`\.apps\.internal\.$ i-{1}-6db46378.ferry-internal-routes.svc.cluster.local.`,
		`\.e2e\.internal\.$ i-{1}-be79cc71.ferry-e2e-internal-routes.svc.cluster.local.`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("coredns_rewrites output lacks %q:\n%s", want, got)
		}
	}
}
