-- +goose Up
-- apps are Cloud Controller v3 apps: the desired state of one application in
-- a space. Staging and running state live with builds, droplets and
-- processes; this table keeps what the user asked for.
CREATE TABLE apps (
    guid                  text PRIMARY KEY,
    name                  text NOT NULL,
    space_guid            text NOT NULL REFERENCES spaces (guid) ON DELETE CASCADE,
    state                 text NOT NULL DEFAULT 'STOPPED',
    lifecycle_type        text NOT NULL DEFAULT 'buildpack',
    -- Buildpack names or URLs in detection order; empty means auto-detect.
    -- Docker apps have none.
    lifecycle_buildpacks  text[] NOT NULL DEFAULT '{}',
    -- The stack of a buildpack app; NULL for docker apps.
    lifecycle_stack       text,
    -- An object of string values. The values are secrets: they are never
    -- logged and never copied into audit events.
    environment_variables jsonb NOT NULL DEFAULT '{}',
    -- The droplet the app runs. The foreign key to droplets is added with
    -- the droplets table.
    current_droplet_guid  text,
    revisions_enabled     boolean NOT NULL DEFAULT true,
    labels                jsonb NOT NULL DEFAULT '{}',
    annotations           jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT apps_state_check CHECK (state IN ('STOPPED', 'STARTED')),
    CONSTRAINT apps_lifecycle_type_check CHECK (lifecycle_type IN ('buildpack', 'docker')),
    CONSTRAINT apps_environment_variables_check CHECK (jsonb_typeof(environment_variables) = 'object')
);

-- App names are unique within a space without regard to case, like space
-- names within an organization. The names filter uses the same expression.
CREATE UNIQUE INDEX apps_space_name_key ON apps (space_guid, lower(name));
CREATE INDEX apps_lower_name_idx ON apps (lower(name));
CREATE INDEX apps_labels_idx ON apps USING gin (labels);
CREATE INDEX apps_created_at_idx ON apps (created_at, guid);
CREATE INDEX apps_current_droplet_guid_idx ON apps (current_droplet_guid);

-- +goose Down
DROP TABLE apps;
