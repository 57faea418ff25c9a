-- +goose Up
-- Changes that alter a space's routing objects are announced on the
-- ferry_routes channel, so the controller syncs them at once instead of at
-- its next resync. The payload is the guid of a space whose namespace holds
-- affected objects: the space of each destination app of the route, and the
-- route's own space. Changes that can affect every space or a Gateway
-- (domains, certificates, an organization's dedicated_gateway flag) send ''
-- instead, which means "every space and the gateways". PostgreSQL sends
-- notifications on commit and collapses equal payloads of one transaction.

-- +goose StatementBegin
-- ferry_notify_route_spaces announces each space that has a destination app
-- of the route route_guid.
CREATE FUNCTION ferry_notify_route_spaces(route_guid text) RETURNS void AS $$
DECLARE
    space text;
BEGIN
    FOR space IN SELECT DISTINCT a.space_guid FROM route_destinations rd JOIN apps a ON a.guid = rd.app_guid
            WHERE rd.route_guid = ferry_notify_route_spaces.route_guid LOOP
        PERFORM pg_notify('ferry_routes', space);
    END LOOP;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION ferry_notify_route() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ferry_routes', OLD.space_guid);
        PERFORM ferry_notify_route_spaces(OLD.guid);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ferry_routes', NEW.space_guid);
        PERFORM ferry_notify_route_spaces(NEW.guid);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- A destination's objects are in its app's space. When the app itself is
-- being deleted, its row is already gone here, and the trigger on apps
-- announces the space instead.
-- +goose StatementBegin
CREATE FUNCTION ferry_notify_route_destination() RETURNS trigger AS $$
DECLARE
    space text;
BEGIN
    FOR space IN SELECT DISTINCT a.space_guid FROM apps a
            WHERE a.guid IN (NEW.app_guid, OLD.app_guid) LOOP
        PERFORM pg_notify('ferry_routes', space);
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION ferry_notify_route_share() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_routes', COALESCE(NEW.space_guid, OLD.space_guid));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION ferry_notify_deleted_app() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_routes', OLD.space_guid);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION ferry_notify_all_routes() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_routes', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER routes_notify_routing AFTER INSERT OR DELETE ON routes
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_route();
-- Updates that touch only updated_at, labels or annotations, as every
-- destination change does, leave the objects as they are.
CREATE TRIGGER routes_notify_routing_update AFTER UPDATE ON routes
    FOR EACH ROW WHEN ((OLD.host, OLD.path, OLD.port, OLD.protocol, OLD.domain_guid, OLD.space_guid)
        IS DISTINCT FROM (NEW.host, NEW.path, NEW.port, NEW.protocol, NEW.domain_guid, NEW.space_guid))
    EXECUTE FUNCTION ferry_notify_route();
CREATE TRIGGER route_destinations_notify_routing AFTER INSERT OR UPDATE OR DELETE ON route_destinations
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_route_destination();
CREATE TRIGGER route_shares_notify_routing AFTER INSERT OR DELETE ON route_shares
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_route_share();
CREATE TRIGGER apps_notify_routing AFTER DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_deleted_app();
-- A domain's name, owner and annotations decide hostnames, the Gateway of
-- its routes and cert-manager issuance. Inserts and deletes change the
-- gateways' listeners.
CREATE TRIGGER domains_notify_routing_insert_delete AFTER INSERT OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_all_routes();
CREATE TRIGGER domains_notify_routing_update AFTER UPDATE ON domains
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
        OR OLD.organization_guid IS DISTINCT FROM NEW.organization_guid
        OR OLD.annotations IS DISTINCT FROM NEW.annotations)
    EXECUTE FUNCTION ferry_notify_all_routes();
CREATE TRIGGER certificates_notify_routing AFTER INSERT OR UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_all_routes();
CREATE TRIGGER organizations_notify_routing AFTER UPDATE OF dedicated_gateway ON organizations
    FOR EACH ROW WHEN (OLD.dedicated_gateway IS DISTINCT FROM NEW.dedicated_gateway)
    EXECUTE FUNCTION ferry_notify_all_routes();

-- +goose Down
DROP TRIGGER organizations_notify_routing ON organizations;
DROP TRIGGER certificates_notify_routing ON certificates;
DROP TRIGGER domains_notify_routing_update ON domains;
DROP TRIGGER domains_notify_routing_insert_delete ON domains;
DROP TRIGGER apps_notify_routing ON apps;
DROP TRIGGER route_shares_notify_routing ON route_shares;
DROP TRIGGER route_destinations_notify_routing ON route_destinations;
DROP TRIGGER routes_notify_routing_update ON routes;
DROP TRIGGER routes_notify_routing ON routes;
DROP FUNCTION ferry_notify_all_routes();
DROP FUNCTION ferry_notify_deleted_app();
DROP FUNCTION ferry_notify_route_share();
DROP FUNCTION ferry_notify_route_destination();
DROP FUNCTION ferry_notify_route();
DROP FUNCTION ferry_notify_route_spaces(text);
