-- +goose Up
-- Cloud Controller's tenancy model: quotas, orgs, spaces, users and roles,
-- plus feature flags, async jobs and audit events. GUIDs are text so that a
-- malformed GUID in a request is simply "not found" rather than a cast error.

CREATE TABLE organization_quotas (
    guid                              text PRIMARY KEY,
    name                              text NOT NULL,
    total_memory_in_mb                bigint,
    per_process_memory_in_mb          bigint,
    total_instances                   bigint,
    per_app_tasks                     bigint,
    log_rate_limit_in_bytes_per_second bigint,
    paid_services_allowed             boolean NOT NULL DEFAULT true,
    total_service_instances           bigint,
    total_service_keys                bigint,
    total_routes                      bigint,
    total_reserved_ports              bigint,
    total_private_domains             bigint,
    created_at                        timestamptz NOT NULL DEFAULT now(),
    updated_at                        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_quotas_name_key UNIQUE (name)
);

CREATE TABLE organizations (
    guid        text PRIMARY KEY,
    name        text NOT NULL,
    suspended   boolean NOT NULL DEFAULT false,
    quota_guid  text NOT NULL REFERENCES organization_quotas (guid),
    labels      jsonb NOT NULL DEFAULT '{}',
    annotations jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_name_key UNIQUE (name)
);
CREATE INDEX organizations_quota_guid_idx ON organizations (quota_guid);

CREATE TABLE space_quotas (
    guid                              text PRIMARY KEY,
    name                              text NOT NULL,
    organization_guid                 text NOT NULL REFERENCES organizations (guid) ON DELETE CASCADE,
    total_memory_in_mb                bigint,
    per_process_memory_in_mb          bigint,
    total_instances                   bigint,
    per_app_tasks                     bigint,
    log_rate_limit_in_bytes_per_second bigint,
    paid_services_allowed             boolean NOT NULL DEFAULT true,
    total_service_instances           bigint,
    total_service_keys                bigint,
    total_routes                      bigint,
    total_reserved_ports              bigint,
    created_at                        timestamptz NOT NULL DEFAULT now(),
    updated_at                        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT space_quotas_org_name_key UNIQUE (organization_guid, name)
);

CREATE TABLE spaces (
    guid              text PRIMARY KEY,
    name              text NOT NULL,
    organization_guid text NOT NULL REFERENCES organizations (guid) ON DELETE CASCADE,
    quota_guid        text REFERENCES space_quotas (guid) ON DELETE SET NULL,
    labels            jsonb NOT NULL DEFAULT '{}',
    annotations       jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT spaces_org_name_key UNIQUE (organization_guid, name)
);
CREATE INDEX spaces_name_idx ON spaces (name);
CREATE INDEX spaces_quota_guid_idx ON spaces (quota_guid);

-- users are Cloud Controller's user records. The identity behind a user
-- (username, origin, password) lives in uaa_users, created by the auth
-- migrations; a UAA user may exist without a Cloud Controller record.
CREATE TABLE users (
    guid        text PRIMARY KEY,
    labels      jsonb NOT NULL DEFAULT '{}',
    annotations jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    guid              text PRIMARY KEY,
    type              text NOT NULL,
    user_guid         text NOT NULL REFERENCES users (guid) ON DELETE CASCADE,
    organization_guid text REFERENCES organizations (guid) ON DELETE CASCADE,
    space_guid        text REFERENCES spaces (guid) ON DELETE CASCADE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_one_target CHECK ((organization_guid IS NULL) <> (space_guid IS NULL)),
    CONSTRAINT roles_type_check CHECK (type IN (
        'organization_user', 'organization_auditor', 'organization_manager', 'organization_billing_manager',
        'space_developer', 'space_auditor', 'space_manager', 'space_supporter'))
);
CREATE UNIQUE INDEX roles_org_user_type_key ON roles (organization_guid, user_guid, type) WHERE organization_guid IS NOT NULL;
CREATE UNIQUE INDEX roles_space_user_type_key ON roles (space_guid, user_guid, type) WHERE space_guid IS NOT NULL;
CREATE INDEX roles_user_guid_idx ON roles (user_guid);

-- feature_flags holds only flags an admin changed; defaults live in code.
CREATE TABLE feature_flags (
    name                 text PRIMARY KEY,
    enabled              boolean NOT NULL,
    custom_error_message text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- jobs are the async operations behind 202 + Location responses. A job in
-- state PROCESSING is resumed by whichever Ferry process starts next, so a
-- restart never strands one.
CREATE TABLE jobs (
    guid          text PRIMARY KEY,
    operation     text NOT NULL,
    state         text NOT NULL DEFAULT 'PROCESSING',
    resource_type text NOT NULL,
    resource_guid text NOT NULL,
    user_guid     text,
    errors        jsonb NOT NULL DEFAULT '[]',
    warnings      jsonb NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_state_check CHECK (state IN ('PROCESSING', 'POLLING', 'COMPLETE', 'FAILED'))
);
CREATE INDEX jobs_processing_idx ON jobs (created_at) WHERE state IN ('PROCESSING', 'POLLING');

CREATE TABLE audit_events (
    guid              text PRIMARY KEY,
    type              text NOT NULL,
    actor_guid        text NOT NULL,
    actor_type        text NOT NULL,
    actor_name        text NOT NULL,
    target_guid       text NOT NULL,
    target_type       text NOT NULL,
    target_name       text NOT NULL,
    space_guid        text,
    organization_guid text,
    data              jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
CREATE INDEX audit_events_target_guid_idx ON audit_events (target_guid);
CREATE INDEX audit_events_space_guid_idx ON audit_events (space_guid);
CREATE INDEX audit_events_organization_guid_idx ON audit_events (organization_guid);

-- The quota every new organization gets unless another is applied.
INSERT INTO organization_quotas (guid, name, total_memory_in_mb, per_process_memory_in_mb, total_instances,
    per_app_tasks, total_service_instances, total_service_keys, total_routes, total_reserved_ports,
    total_private_domains)
VALUES ('8d8fbb2d-0f6a-4d4b-9d1d-6b0ed3b0a001', 'default', 102400, NULL, NULL, NULL, 100, NULL, 1000, 0, NULL);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE jobs;
DROP TABLE feature_flags;
DROP TABLE roles;
DROP TABLE users;
DROP TABLE spaces;
DROP TABLE space_quotas;
DROP TABLE organizations;
DROP TABLE organization_quotas;
