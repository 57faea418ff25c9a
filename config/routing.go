package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

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
	if r.Enabled && (r.GatewayNamespace == "" || r.GatewayName == "") {
		errs = append(errs, errors.New("routing.gateway_namespace or routing.gateway_name is empty: name the Gateway that routes attach to, such as ferry-system and ferry"))
	}
	return errs
}
