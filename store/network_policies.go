package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// Network policy protocols, as Cloud Foundry's policy server names them.
const (
	NetworkPolicyProtocolTCP = "tcp"
	NetworkPolicyProtocolUDP = "udp"
)

// NetworkPolicy allows the instances of the source app to reach the
// instances of the destination app on Protocol, ports StartPort to EndPort
// inclusive. All five fields together are its identity.
type NetworkPolicy struct {
	SourceAppGUID      string
	DestinationAppGUID string
	Protocol           string
	StartPort          int
	EndPort            int
}

// SpaceNetworkPolicy is a network policy with the spaces of both apps, as
// the controller needs them to select the source app's pods.
type SpaceNetworkPolicy struct {
	NetworkPolicy
	SourceSpaceGUID      string
	DestinationSpaceGUID string
}

const networkPolicyColumns = `p.source_app_guid, p.destination_app_guid, p.protocol, p.start_port, p.end_port`

// networkPolicyOrder lists policies oldest first, and ties in a fixed order.
const networkPolicyOrder = ` ORDER BY p.created_at, p.source_app_guid, p.destination_app_guid, p.protocol, p.start_port, p.end_port`

func scanNetworkPolicy(row interface{ Scan(...any) error }, extra ...any) (NetworkPolicy, error) {
	var p NetworkPolicy
	dest := append([]any{&p.SourceAppGUID, &p.DestinationAppGUID, &p.Protocol, &p.StartPort, &p.EndPort}, extra...)
	if err := row.Scan(dest...); err != nil {
		return NetworkPolicy{}, mapError(err)
	}
	return p, nil
}

// CreateNetworkPolicies inserts policies. A policy that already exists is
// left as it is, so a repeated create succeeds. A missing source app is a
// *ForeignKeyError and a missing destination app is ErrNotFound; run it in
// a transaction so such a failure inserts none of the policies.
func CreateNetworkPolicies(ctx context.Context, q querier, policies []NetworkPolicy) error {
	for _, p := range policies {
		// The destination's space is read from its app row in the same
		// statement, so it cannot disagree with the app.
		var destinationExists bool
		err := q.QueryRowContext(ctx, `
			WITH destination AS (SELECT guid, space_guid FROM apps WHERE guid = $2),
			insert AS (
				INSERT INTO network_policies (source_app_guid, destination_app_guid, destination_space_guid,
					protocol, start_port, end_port)
				SELECT $1, d.guid, d.space_guid, $3, $4, $5 FROM destination d
				ON CONFLICT DO NOTHING)
			SELECT EXISTS (SELECT 1 FROM destination)`,
			p.SourceAppGUID, p.DestinationAppGUID, p.Protocol, p.StartPort, p.EndPort).Scan(&destinationExists)
		if err != nil {
			return fmt.Errorf("create network policy from app %s to app %s: %w", p.SourceAppGUID, p.DestinationAppGUID, mapError(err))
		}
		if !destinationExists {
			return fmt.Errorf("create network policy to app %s: %w", p.DestinationAppGUID, ErrNotFound)
		}
	}
	return nil
}

// DeleteNetworkPolicies deletes policies and returns how many existed.
// Deleting a policy that does not exist is not an error.
func DeleteNetworkPolicies(ctx context.Context, q querier, policies []NetworkPolicy) (int, error) {
	deleted := 0
	for _, p := range policies {
		res, err := q.ExecContext(ctx, `DELETE FROM network_policies
			WHERE source_app_guid = $1 AND destination_app_guid = $2 AND protocol = $3 AND start_port = $4 AND end_port = $5`,
			p.SourceAppGUID, p.DestinationAppGUID, p.Protocol, p.StartPort, p.EndPort)
		if err != nil {
			return deleted, fmt.Errorf("delete network policy from app %s to app %s: %w", p.SourceAppGUID, p.DestinationAppGUID, mapError(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, fmt.Errorf("delete network policy from app %s to app %s: %w", p.SourceAppGUID, p.DestinationAppGUID, mapError(err))
		}
		deleted += int(n)
	}
	return deleted, nil
}

// NetworkPolicies returns the policies vis may see, oldest first. A policy
// is visible when vis may see the space of its source app or of its
// destination app. When appGUIDs is not nil, only policies whose source or
// destination is one of them are returned.
func (s *Store) NetworkPolicies(ctx context.Context, vis Visibility, appGUIDs []string) ([]NetworkPolicy, error) {
	var a args
	where := `(` + vis.spaceCondition("src.space_guid", &a) + ` OR ` + vis.spaceCondition("p.destination_space_guid", &a) + `)`
	if appGUIDs != nil {
		guids := a.add(pq.Array(appGUIDs))
		where += ` AND (p.source_app_guid = ANY(` + guids + `::text[]) OR p.destination_app_guid = ANY(` + guids + `::text[]))`
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+networkPolicyColumns+` FROM network_policies p
		JOIN apps src ON src.guid = p.source_app_guid
		WHERE `+where+networkPolicyOrder, a...)
	if err != nil {
		return nil, fmt.Errorf("list network policies: %w", mapError(err))
	}
	defer rows.Close()

	policies := []NetworkPolicy{}
	for rows.Next() {
		p, err := scanNetworkPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("list network policies: %w", err)
		}
		policies = append(policies, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list network policies: %w", mapError(err))
	}
	return policies, nil
}

// SpaceNetworkPolicies returns every policy whose destination app is in
// the space spaceGUID, oldest first, with the spaces of both apps.
func (s *Store) SpaceNetworkPolicies(ctx context.Context, spaceGUID string) ([]SpaceNetworkPolicy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+networkPolicyColumns+`, src.space_guid, p.destination_space_guid
		FROM network_policies p JOIN apps src ON src.guid = p.source_app_guid
		WHERE p.destination_space_guid = $1`+networkPolicyOrder, spaceGUID)
	if err != nil {
		return nil, fmt.Errorf("network policies of space %s: %w", spaceGUID, mapError(err))
	}
	defer rows.Close()

	policies := []SpaceNetworkPolicy{}
	for rows.Next() {
		var sp SpaceNetworkPolicy
		p, err := scanNetworkPolicy(rows, &sp.SourceSpaceGUID, &sp.DestinationSpaceGUID)
		if err != nil {
			return nil, fmt.Errorf("network policies of space %s: %w", spaceGUID, err)
		}
		sp.NetworkPolicy = p
		policies = append(policies, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("network policies of space %s: %w", spaceGUID, mapError(err))
	}
	return policies, nil
}
