-- +goose Up
-- UDP routes are a Ferry extension: like TCP routes they belong to a TCP
-- domain and carry a port. A TCP route and a UDP route may share a port,
-- because they are different sockets, so ports are unique per protocol.
ALTER TABLE routes DROP CONSTRAINT routes_protocol_check;
ALTER TABLE routes ADD CONSTRAINT routes_protocol_check CHECK (protocol IN ('http', 'tcp', 'udp'));
ALTER TABLE routes DROP CONSTRAINT routes_tcp_check;
ALTER TABLE routes ADD CONSTRAINT routes_port_protocol_check CHECK ((protocol IN ('tcp', 'udp')) = (port IS NOT NULL));
DROP INDEX routes_domain_port_key;
CREATE UNIQUE INDEX routes_domain_port_key ON routes (domain_guid, port, protocol) WHERE port IS NOT NULL;
DROP INDEX routes_router_group_port_key;
CREATE UNIQUE INDEX routes_router_group_port_key ON routes (router_group_guid, port, protocol) WHERE router_group_guid IS NOT NULL;

ALTER TABLE route_destinations DROP CONSTRAINT route_destinations_protocol_check;
ALTER TABLE route_destinations ADD CONSTRAINT route_destinations_protocol_check CHECK (protocol IN ('http1', 'http2', 'tcp', 'udp'));

-- dedicated_gateway gives an organization its own Gateway: routes of the
-- organization's private domains attach to it instead of the shared one.
-- Only admins change it.
ALTER TABLE organizations ADD COLUMN dedicated_gateway boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE organizations DROP COLUMN dedicated_gateway;
DELETE FROM route_destinations WHERE protocol = 'udp';
ALTER TABLE route_destinations DROP CONSTRAINT route_destinations_protocol_check;
ALTER TABLE route_destinations ADD CONSTRAINT route_destinations_protocol_check CHECK (protocol IN ('http1', 'http2', 'tcp'));
DELETE FROM routes WHERE protocol = 'udp';
DROP INDEX routes_router_group_port_key;
CREATE UNIQUE INDEX routes_router_group_port_key ON routes (router_group_guid, port) WHERE router_group_guid IS NOT NULL;
DROP INDEX routes_domain_port_key;
CREATE UNIQUE INDEX routes_domain_port_key ON routes (domain_guid, port) WHERE port IS NOT NULL;
ALTER TABLE routes DROP CONSTRAINT routes_port_protocol_check;
ALTER TABLE routes ADD CONSTRAINT routes_tcp_check CHECK ((protocol = 'tcp') = (port IS NOT NULL));
ALTER TABLE routes DROP CONSTRAINT routes_protocol_check;
ALTER TABLE routes ADD CONSTRAINT routes_protocol_check CHECK (protocol IN ('http', 'tcp'));
