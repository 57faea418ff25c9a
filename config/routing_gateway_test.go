package config

import (
	"strings"
	"testing"
)

func TestRoutingGatewayDefaults(t *testing.T) {
	r := Default().Routing
	if r.Enabled {
		t.Error("routing.enabled defaults to true, want false")
	}
	if r.GatewayNamespace != "ferry-system" || r.GatewayName != "ferry" {
		t.Errorf("gateway = %s/%s, want ferry-system/ferry", r.GatewayNamespace, r.GatewayName)
	}
}

func TestRoutingEnabledNeedsGateway(t *testing.T) {
	r := Default().Routing
	r.Enabled = true
	if errs := r.validate(); len(errs) != 0 {
		t.Errorf("enabled routing with the default Gateway rejected: %v", errs)
	}
	r.GatewayName = ""
	errs := r.validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "routing.gateway_name") {
		t.Errorf("errors = %v, want one naming routing.gateway_name", errs)
	}
	r.Enabled = false
	if errs := r.validate(); len(errs) != 0 {
		t.Errorf("disabled routing without a Gateway rejected: %v", errs)
	}
}
