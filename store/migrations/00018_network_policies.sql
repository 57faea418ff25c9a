-- +goose Up
-- A network policy allows the source app's instances to reach the
-- destination app's instances on a protocol and port range, as Cloud
-- Foundry's policy server stores them. A policy has no GUID in its API:
-- the whole row is its identity, so creating one twice is a no-op.
-- Deleting either app deletes its policies.
--
-- destination_space_guid copies the destination app's space, because the
-- notify trigger needs it after a cascading delete has already removed the
-- app row. Apps never move between spaces, so the copy never goes stale.
CREATE TABLE network_policies (
    source_app_guid        text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    destination_app_guid   text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    destination_space_guid text NOT NULL,
    protocol               text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    start_port             integer NOT NULL CHECK (start_port BETWEEN 1 AND 65535),
    end_port               integer NOT NULL CHECK (end_port BETWEEN 1 AND 65535),
    created_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (start_port <= end_port),
    PRIMARY KEY (source_app_guid, destination_app_guid, protocol, start_port, end_port)
);
CREATE INDEX network_policies_destination_idx ON network_policies (destination_app_guid);
CREATE INDEX network_policies_destination_space_idx ON network_policies (destination_space_guid);

-- Every change to a policy is announced on the ferry_routes channel with
-- the destination app's space GUID, because that space's namespace holds
-- the NetworkPolicy objects the policy becomes.
-- +goose StatementBegin
CREATE FUNCTION ferry_notify_network_policy() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_routes', COALESCE(NEW.destination_space_guid, OLD.destination_space_guid));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER network_policies_notify AFTER INSERT OR UPDATE OR DELETE ON network_policies
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_network_policy();

-- +goose Down
DROP TRIGGER network_policies_notify ON network_policies;
DROP FUNCTION ferry_notify_network_policy();
DROP TABLE network_policies;
