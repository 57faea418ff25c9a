-- +goose Up
-- kube_events keeps the Kubernetes Warning events about the pods,
-- StatefulSets and Jobs that run and stage apps: failed image pulls, failed
-- scheduling, failed probes, back-offs. The API server deletes events after
-- its event TTL (one hour by default), so the controller copies them here,
-- one row per Event object, and updates the row whenever the event repeats.
-- It prunes rows older than a maximum age and beyond the newest rows of
-- each app. Rows go with their app.
CREATE TABLE kube_events (
    -- uid is the Event object's metadata.uid.
    uid                  text PRIMARY KEY,
    app_guid             text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    -- process_guid and instance_index are NULL for events that concern no
    -- process or no single instance, build_guid for events outside staging.
    process_guid         text,
    instance_index       integer,
    build_guid           text,
    type                 text NOT NULL,
    reason               text NOT NULL,
    message              text NOT NULL,
    count                integer NOT NULL,
    first_seen           timestamptz NOT NULL,
    last_seen            timestamptz NOT NULL,
    namespace            text NOT NULL,
    involved_object_kind text NOT NULL,
    involved_object_name text NOT NULL,
    involved_object_uid  text NOT NULL DEFAULT ''
);
CREATE INDEX kube_events_app_guid_last_seen_idx ON kube_events (app_guid, last_seen DESC);
CREATE INDEX kube_events_last_seen_idx ON kube_events (last_seen);

-- +goose Down
DROP TABLE kube_events;
