package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Routing modes.
const (
	RoutingModeGateway = "gateway"
	RoutingModeIngress = "ingress"
)

// UDPGateway returns the namespace and name of the Gateway UDP routes
// attach to.
func (r Routing) UDPGateway() (namespace, name string) {
	if r.UDPGatewayName == "" {
		return r.GatewayNamespace, r.GatewayName
	}
	namespace = r.UDPGatewayNamespace
	if namespace == "" {
		namespace = r.GatewayNamespace
	}
	return namespace, r.UDPGatewayName
}

// PortRange is an inclusive range of TCP ports.
type PortRange struct {
	First, Last int
}

// ParsePortRanges parses reservable ports in the routing API's format:
// ports and ranges separated by commas, such as "1024-1033,2000". Every
// port is between 1 and 65535, and a range's first port is not above its
// last.
func ParsePortRanges(s string) ([]PortRange, error) {
	var ranges []PortRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		first, last, isRange := strings.Cut(part, "-")
		lo, err1 := strconv.Atoi(strings.TrimSpace(first))
		hi := lo
		var err2 error
		if isRange {
			hi, err2 = strconv.Atoi(strings.TrimSpace(last))
		}
		if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
			return nil, fmt.Errorf("invalid port range %q: use ports from 1 to 65535 and ranges such as 1024-1033, separated by commas", part)
		}
		ranges = append(ranges, PortRange{First: lo, Last: hi})
	}
	return ranges, nil
}

// validate checks the routing settings.
func (r Routing) validate() []error {
	var errs []error
	if r.DefaultDomain == "" {
		errs = append(errs, errors.New("routing.default_domain is empty: set a domain name such as apps.example.com"))
	}
	if r.InternalDomain == "" {
		errs = append(errs, errors.New("routing.internal_domain is empty: set a domain name such as apps.internal"))
	}
	if _, err := ParsePortRanges(r.TCPReservablePorts); err != nil {
		errs = append(errs, fmt.Errorf("routing.tcp_reservable_ports: %w", err))
	}
	if r.Mode != RoutingModeGateway && r.Mode != RoutingModeIngress {
		errs = append(errs, fmt.Errorf("routing.mode is %q: use %q or %q", r.Mode, RoutingModeGateway, RoutingModeIngress))
	}
	if r.HTTPSPort < 1 || r.HTTPSPort > 65535 {
		errs = append(errs, fmt.Errorf("routing.https_port is %d: use a port from 1 to 65535, such as 443", r.HTTPSPort))
	}
	if r.Enabled && r.InternalRouteNamespace == "" {
		errs = append(errs, errors.New("routing.internal_route_namespace is empty: name the namespace for internal route Services, such as ferry-internal-routes"))
	}
	if r.Enabled && r.Mode == RoutingModeGateway && (r.GatewayNamespace == "" || r.GatewayName == "") {
		errs = append(errs, errors.New("routing.gateway_namespace or routing.gateway_name is empty: name the Gateway that routes attach to, such as ferry-system and ferry"))
	}
	return errs
}
