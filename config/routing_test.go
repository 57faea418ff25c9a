package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePortRanges(t *testing.T) {
	got, err := ParsePortRanges("1024-1033, 2000")
	if err != nil {
		t.Fatalf("ParsePortRanges: %v", err)
	}
	want := []PortRange{{First: 1024, Last: 1033}, {First: 2000, Last: 2000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}

	for _, bad := range []string{"", "0", "70000", "2000-1000", "a-b", "1024-", "1024,,1025"} {
		if _, err := ParsePortRanges(bad); err == nil {
			t.Errorf("ParsePortRanges(%q) succeeded, want an error", bad)
		}
	}
}

func TestRoutingDefaultsValid(t *testing.T) {
	r := Default().Routing
	if errs := r.validate(); len(errs) != 0 {
		t.Errorf("default routing settings rejected: %v", errs)
	}
	r.TCPReservablePorts = "1-2-3"
	errs := r.validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "routing.tcp_reservable_ports") {
		t.Errorf("bad ports: errors = %v, want one naming routing.tcp_reservable_ports", errs)
	}
}
