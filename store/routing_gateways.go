package store

import (
	"context"
	"fmt"
)

// The gateway reconciler reads the queries below, and
// DedicatedGatewayOrgs, to keep TLS Secrets, Gateway listeners and the
// organizations' own Gateways in line with the whole installation. They
// apply no visibility, because they serve the controller and not a user.

// GatewayDomain is an external HTTP domain as the gateway reconciler needs
// it.
type GatewayDomain struct {
	GUID string
	Name string
	// OrganizationGUID owns a private domain. It is "" for shared domains.
	OrganizationGUID string
	Annotations      map[string]string
}

// GatewayPortRoute is a TCP or UDP route, which needs a listener on its
// port.
type GatewayPortRoute struct {
	GUID string
	// Protocol is RouteProtocolTCP or RouteProtocolUDP.
	Protocol   string
	Port       int
	DomainName string
	SpaceGUID  string
	OrgGUID    string
}

// AllCertificates returns every uploaded certificate, ordered by domain
// name.
func (s *Store) AllCertificates(ctx context.Context) ([]Certificate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+certificateColumns+` FROM certificates c ORDER BY c.domain_name`)
	if err != nil {
		return nil, fmt.Errorf("list all certificates: %w", mapError(err))
	}
	defer rows.Close()

	certs := []Certificate{}
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, fmt.Errorf("list all certificates: %w", err)
		}
		certs = append(certs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list all certificates: %w", mapError(err))
	}
	return certs, nil
}

// GatewayDomains returns every domain that HTTP routes can use from
// outside the cluster: neither internal nor a TCP domain. They are ordered
// by name in lower case.
func (s *Store) GatewayDomains(ctx context.Context) ([]GatewayDomain, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.guid, d.name, COALESCE(d.organization_guid, ''), d.annotations
		FROM domains d WHERE NOT d.internal AND d.router_group_guid IS NULL ORDER BY lower(d.name), d.guid`)
	if err != nil {
		return nil, fmt.Errorf("list gateway domains: %w", mapError(err))
	}
	defer rows.Close()

	domains := []GatewayDomain{}
	for rows.Next() {
		var d GatewayDomain
		var annotations []byte
		if err := rows.Scan(&d.GUID, &d.Name, &d.OrganizationGUID, &annotations); err != nil {
			return nil, fmt.Errorf("list gateway domains: %w", mapError(err))
		}
		if d.Annotations, err = jsonMap(annotations); err != nil {
			return nil, fmt.Errorf("list gateway domains: domain %s: %w", d.GUID, err)
		}
		domains = append(domains, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list gateway domains: %w", mapError(err))
	}
	return domains, nil
}

// GatewayPortRoutes returns every TCP and UDP route, ordered by protocol
// and port.
func (s *Store) GatewayPortRoutes(ctx context.Context) ([]GatewayPortRoute, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.guid, r.protocol, r.port, d.name, r.space_guid, s.organization_guid
		FROM routes r JOIN domains d ON d.guid = r.domain_guid JOIN spaces s ON s.guid = r.space_guid
		WHERE r.protocol IN ('tcp', 'udp') ORDER BY r.protocol, r.port, r.guid`)
	if err != nil {
		return nil, fmt.Errorf("list TCP and UDP routes: %w", mapError(err))
	}
	defer rows.Close()

	routes := []GatewayPortRoute{}
	for rows.Next() {
		var r GatewayPortRoute
		if err := rows.Scan(&r.GUID, &r.Protocol, &r.Port, &r.DomainName, &r.SpaceGUID, &r.OrgGUID); err != nil {
			return nil, fmt.Errorf("list TCP and UDP routes: %w", mapError(err))
		}
		routes = append(routes, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list TCP and UDP routes: %w", mapError(err))
	}
	return routes, nil
}
