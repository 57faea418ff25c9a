-- +goose Up
-- environment_variable_groups are Cloud Controller's two platform-wide sets
-- of variables: "staging" reaches every staging container and "running"
-- every app instance, and an app's own variables override both. The values
-- are secrets: they are never logged and never copied into audit events.
CREATE TABLE environment_variable_groups (
    name                  text PRIMARY KEY,
    environment_variables jsonb NOT NULL DEFAULT '{}',
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT environment_variable_groups_name_check CHECK (name IN ('running', 'staging')),
    CONSTRAINT environment_variable_groups_variables_check CHECK (jsonb_typeof(environment_variables) = 'object')
);
INSERT INTO environment_variable_groups (name) VALUES ('running'), ('staging');

-- app_usage_events is the billing record of Cloud Controller's app usage
-- events: one row each time a process starts, stops or changes its
-- footprint while started. Rows copy names and counts instead of
-- referencing apps, so they outlive what they describe. id orders events
-- by insertion for the after_guid filter.
CREATE TABLE app_usage_events (
    id                                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guid                               text NOT NULL,
    state                              text NOT NULL,
    previous_state                     text,
    instance_count                     integer NOT NULL,
    previous_instance_count            integer,
    memory_in_mb_per_instance          bigint NOT NULL,
    previous_memory_in_mb_per_instance bigint,
    app_guid                           text NOT NULL,
    app_name                           text NOT NULL,
    process_guid                       text,
    process_type                       text,
    space_guid                         text NOT NULL,
    space_name                         text NOT NULL,
    organization_guid                  text NOT NULL,
    buildpack_guid                     text,
    buildpack_name                     text,
    task_guid                          text,
    task_name                          text,
    created_at                         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_usage_events_guid_key UNIQUE (guid)
);
CREATE INDEX app_usage_events_created_at_idx ON app_usage_events (created_at, id);

-- allow_ssh is the space's "ssh" feature. It defaults to true, as in Cloud
-- Controller, and only permits SSH: Ferry offers no SSH access to app
-- instances, so every app reports SSH as disabled globally.
ALTER TABLE spaces ADD COLUMN allow_ssh boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE spaces DROP COLUMN allow_ssh;
DROP TABLE app_usage_events;
DROP TABLE environment_variable_groups;
