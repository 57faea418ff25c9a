package config

import (
	"strings"
	"testing"
)

func TestRoutingGatewayDefaults(t *testing.T) {
	r := Default().Routing
	if !r.Enabled || r.Mode != RoutingModeGateway || !r.ManageListeners {
		t.Errorf("enabled, mode, manage_listeners = %v, %q, %v; want true, gateway, true", r.Enabled, r.Mode, r.ManageListeners)
	}
	if ns, name := r.UDPGateway(); ns != "ferry-system" || name != "ferry" {
		t.Errorf("UDP gateway = %s/%s, want the main Gateway", ns, name)
	}
	r.UDPGatewayName = "udp"
	if ns, name := r.UDPGateway(); ns != "ferry-system" || name != "udp" {
		t.Errorf("UDP gateway = %s/%s, want ferry-system/udp", ns, name)
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

func TestRoutingModeChecked(t *testing.T) {
	r := Default().Routing
	r.Mode = "istio"
	errs := r.validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "routing.mode") {
		t.Errorf("errors = %v, want one naming routing.mode", errs)
	}
	r.Mode = RoutingModeIngress
	r.GatewayName = ""
	if errs := r.validate(); len(errs) != 0 {
		t.Errorf("ingress mode without a Gateway rejected: %v", errs)
	}
}
