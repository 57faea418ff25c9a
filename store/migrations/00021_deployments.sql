-- +goose Up
-- revisions record what an app ran: each new droplet or deployment of an
-- app gets the next version number, so `cf rollback --version N` can
-- deploy that droplet again. Revisions of a deleted app go with it.
CREATE TABLE revisions (
    guid         text PRIMARY KEY,
    app_guid     text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    version      integer NOT NULL,
    -- The droplet the revision ran. A deleted droplet leaves the revision
    -- without one, and such a revision is no longer deployable.
    droplet_guid text REFERENCES droplets (guid) ON DELETE SET NULL,
    description  text NOT NULL DEFAULT '',
    labels       jsonb NOT NULL DEFAULT '{}',
    annotations  jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT revisions_app_version_key UNIQUE (app_guid, version)
);
CREATE INDEX revisions_created_at_idx ON revisions (created_at, guid);

-- ferry_record_revision gives the app for_app its next revision, which runs
-- for_droplet. The caller holds the app's row lock, as every UPDATE of the
-- app does, so two revisions of an app never get the same version.
-- +goose StatementBegin
CREATE FUNCTION ferry_record_revision(for_app text, for_droplet text, new_description text) RETURNS text AS $$
DECLARE
    new_guid text := gen_random_uuid()::text;
BEGIN
    INSERT INTO revisions (guid, app_guid, version, droplet_guid, description)
    SELECT new_guid, for_app, COALESCE(max(r.version), 0) + 1, for_droplet, new_description
    FROM revisions r WHERE r.app_guid = for_app;
    RETURN new_guid;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- Every change of an app's current droplet records a revision while the
-- app's revisions are enabled, whether a push, a deployment or a droplet
-- assignment made it.
-- +goose StatementBegin
CREATE FUNCTION ferry_revision_on_droplet() RETURNS trigger AS $$
BEGIN
    IF NEW.current_droplet_guid IS NOT NULL AND NEW.revisions_enabled
        AND NEW.current_droplet_guid IS DISTINCT FROM OLD.current_droplet_guid THEN
        PERFORM ferry_record_revision(NEW.guid, NEW.current_droplet_guid, 'New droplet deployed.');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER apps_revision AFTER UPDATE OF current_droplet_guid ON apps
    FOR EACH ROW EXECUTE FUNCTION ferry_revision_on_droplet();

-- deployments are rolling and canary replacements of an app's instances.
-- The API writes the request and the app's new droplet and start count in
-- one transaction. The controller moves the instances from the previous
-- start count's pods to the new ones and writes the state transitions back
-- here, so a restarted controller continues where the last one stopped.
CREATE TABLE deployments (
    guid                  text PRIMARY KEY,
    app_guid              text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    -- state is Cloud Controller's deployment state; status_value and
    -- status_reason are its status.
    state                 text NOT NULL,
    status_value          text NOT NULL,
    status_reason         text NOT NULL,
    -- status_error says why the controller stopped the deployment, such as
    -- new instances that crash; '' while nothing went wrong.
    status_error          text NOT NULL DEFAULT '',
    last_status_change    timestamptz NOT NULL DEFAULT now(),
    strategy              text NOT NULL,
    max_in_flight         integer NOT NULL DEFAULT 1,
    -- An array of {"instance_weight": percent} objects; canary only.
    canary_steps          jsonb NOT NULL DEFAULT '[]',
    -- The 1-based canary step the deployment is at or moving to.
    canary_step           integer NOT NULL DEFAULT 1,
    droplet_guid          text REFERENCES droplets (guid) ON DELETE SET NULL,
    previous_droplet_guid text REFERENCES droplets (guid) ON DELETE SET NULL,
    revision_guid         text REFERENCES revisions (guid) ON DELETE SET NULL,
    -- The app's start_count before and after the deployment. The pods of a
    -- start count carry it as their revision label, which is how the
    -- controller tells old instances from new ones.
    previous_start_count  bigint NOT NULL,
    start_count           bigint NOT NULL,
    labels                jsonb NOT NULL DEFAULT '{}',
    annotations           jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deployments_state_check CHECK (state IN ('DEPLOYING', 'PAUSED', 'DEPLOYED', 'CANCELING', 'CANCELED')),
    CONSTRAINT deployments_status_value_check CHECK (status_value IN ('ACTIVE', 'FINALIZED')),
    CONSTRAINT deployments_strategy_check CHECK (strategy IN ('rolling', 'canary')),
    CONSTRAINT deployments_max_in_flight_check CHECK (max_in_flight >= 1),
    CONSTRAINT deployments_canary_steps_check CHECK (jsonb_typeof(canary_steps) = 'array')
);
CREATE INDEX deployments_app_idx ON deployments (app_guid, created_at);
CREATE INDEX deployments_created_at_idx ON deployments (created_at, guid);
-- At most one deployment of an app is active: creating one supersedes the
-- others in the same transaction.
CREATE UNIQUE INDEX deployments_one_active_key ON deployments (app_guid) WHERE status_value = 'ACTIVE';

-- Every change to a deployment wakes the controller for its app.
CREATE TRIGGER deployments_notify AFTER INSERT OR UPDATE OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_app();

-- +goose Down
DROP TRIGGER deployments_notify ON deployments;
DROP TABLE deployments;
DROP TRIGGER apps_revision ON apps;
DROP FUNCTION ferry_revision_on_droplet();
DROP FUNCTION ferry_record_revision(text, text, text);
DROP TABLE revisions;
