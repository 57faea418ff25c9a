-- +goose Up
-- router_groups are the routing API's router groups. Ferry keeps one TCP
-- group, default-tcp, whose reservable ports come from the configuration on
-- every start. reservable_ports is the routing API's format: ports and
-- ranges separated by commas, e.g. "1024-1033,2000".
CREATE TABLE router_groups (
    guid             text PRIMARY KEY,
    name             text NOT NULL,
    type             text NOT NULL,
    reservable_ports text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT router_groups_name_key UNIQUE (name),
    CONSTRAINT router_groups_type_check CHECK (type IN ('tcp', 'http'))
);

-- domains are Cloud Controller domains. A domain without an owning
-- organization is shared with every organization. An internal domain is
-- reachable only inside the cluster. A domain with a router group serves
-- TCP routes. Private domains go with their organization.
CREATE TABLE domains (
    guid              text PRIMARY KEY,
    name              text NOT NULL,
    internal          boolean NOT NULL DEFAULT false,
    router_group_guid text REFERENCES router_groups (guid),
    organization_guid text REFERENCES organizations (guid) ON DELETE CASCADE,
    labels            jsonb NOT NULL DEFAULT '{}',
    annotations       jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT domains_internal_check CHECK (NOT internal OR (organization_guid IS NULL AND router_group_guid IS NULL)),
    CONSTRAINT domains_router_group_check CHECK (router_group_guid IS NULL OR organization_guid IS NULL)
);
-- Domain names are unique without regard to case, as DNS names are.
CREATE UNIQUE INDEX domains_name_key ON domains (lower(name));
CREATE INDEX domains_organization_guid_idx ON domains (organization_guid);
CREATE INDEX domains_created_at_idx ON domains (created_at, guid);

-- domain_shared_organizations lists the organizations a private domain is
-- shared with, besides its owner.
CREATE TABLE domain_shared_organizations (
    domain_guid       text NOT NULL REFERENCES domains (guid) ON DELETE CASCADE,
    organization_guid text NOT NULL REFERENCES organizations (guid) ON DELETE CASCADE,
    PRIMARY KEY (domain_guid, organization_guid)
);
CREATE INDEX domain_shared_organizations_organization_guid_idx ON domain_shared_organizations (organization_guid);

-- routes are Cloud Controller routes: host.domain/path for HTTP, or
-- domain:port for TCP. host and path are '' when absent and port is NULL
-- for HTTP routes. router_group_guid copies the domain's router group, so
-- that a TCP port is unique across every domain of the group.
CREATE TABLE routes (
    guid              text PRIMARY KEY,
    host              text NOT NULL DEFAULT '',
    path              text NOT NULL DEFAULT '',
    port              integer,
    protocol          text NOT NULL,
    domain_guid       text NOT NULL REFERENCES domains (guid) ON DELETE CASCADE,
    router_group_guid text REFERENCES router_groups (guid),
    space_guid        text NOT NULL REFERENCES spaces (guid) ON DELETE CASCADE,
    labels            jsonb NOT NULL DEFAULT '{}',
    annotations       jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT routes_protocol_check CHECK (protocol IN ('http', 'tcp')),
    CONSTRAINT routes_port_check CHECK (port IS NULL OR (port >= 0 AND port <= 65535)),
    CONSTRAINT routes_tcp_check CHECK ((protocol = 'tcp') = (port IS NOT NULL))
);
-- An HTTP route is unique by host (without regard to case), domain and
-- path. A TCP route is unique by domain and port, and by port within its
-- router group.
CREATE UNIQUE INDEX routes_host_domain_path_key ON routes (domain_guid, lower(host), path) WHERE port IS NULL;
CREATE UNIQUE INDEX routes_domain_port_key ON routes (domain_guid, port) WHERE port IS NOT NULL;
CREATE UNIQUE INDEX routes_router_group_port_key ON routes (router_group_guid, port) WHERE router_group_guid IS NOT NULL;
CREATE INDEX routes_space_guid_idx ON routes (space_guid);
CREATE INDEX routes_created_at_idx ON routes (created_at, guid);
CREATE INDEX routes_labels_idx ON routes USING gin (labels);

-- route_shares lists the spaces a route is shared with, besides the space
-- that owns it.
CREATE TABLE route_shares (
    route_guid text NOT NULL REFERENCES routes (guid) ON DELETE CASCADE,
    space_guid text NOT NULL REFERENCES spaces (guid) ON DELETE CASCADE,
    PRIMARY KEY (route_guid, space_guid)
);
CREATE INDEX route_shares_space_guid_idx ON route_shares (space_guid);

-- route_destinations map a route to a process type of an app, on a port of
-- the app's containers. weight is NULL unless every destination of the
-- route has one. id orders destinations by insertion, which created_at
-- cannot do for the destinations one transaction adds.
CREATE TABLE route_destinations (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    guid         text PRIMARY KEY,
    route_guid   text NOT NULL REFERENCES routes (guid) ON DELETE CASCADE,
    app_guid     text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    process_type text NOT NULL DEFAULT 'web',
    app_port     integer NOT NULL DEFAULT 8080,
    weight       integer,
    protocol     text NOT NULL DEFAULT 'http1',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT route_destinations_protocol_check CHECK (protocol IN ('http1', 'http2', 'tcp')),
    CONSTRAINT route_destinations_weight_check CHECK (weight IS NULL OR (weight >= 1 AND weight <= 100)),
    CONSTRAINT route_destinations_app_port_check CHECK (app_port >= 1 AND app_port <= 65535)
);
CREATE UNIQUE INDEX route_destinations_key ON route_destinations (route_guid, app_guid, process_type, app_port, protocol);
CREATE INDEX route_destinations_app_guid_idx ON route_destinations (app_guid);

-- +goose Down
DROP TABLE route_destinations;
DROP TABLE route_shares;
DROP TABLE routes;
DROP TABLE domain_shared_organizations;
DROP TABLE domains;
DROP TABLE router_groups;
