-- +goose Up
-- builds are requests to stage a package into a droplet, and droplets are
-- the results: an image reference pinned by digest plus the process types
-- read from it. Package GUIDs carry no foreign key, as in Cloud Controller,
-- so builds and droplets keep naming their package after it is deleted.

CREATE TABLE builds (
    guid                  text PRIMARY KEY,
    app_guid              text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    package_guid          text NOT NULL,
    -- package_image is the package's image reference, pinned by digest, at
    -- the time the build was created, so staging never depends on the
    -- package row still existing.
    package_image         text NOT NULL DEFAULT '',
    state                 text NOT NULL,
    -- error is "<Cloud Controller error name> - <message>", or NULL.
    error                 text,
    lifecycle_type        text NOT NULL,
    -- Buildpack names as requested, in order; empty means auto-detect.
    lifecycle_buildpacks  text[] NOT NULL DEFAULT '{}',
    lifecycle_stack       text,
    staging_memory_in_mb  bigint NOT NULL,
    staging_disk_in_mb    bigint NOT NULL,
    staging_log_rate_limit_bytes_per_second bigint NOT NULL DEFAULT -1,
    droplet_guid          text,
    created_by_user_guid  text NOT NULL DEFAULT '',
    created_by_user_name  text NOT NULL DEFAULT '',
    created_by_user_email text NOT NULL DEFAULT '',
    labels                jsonb NOT NULL DEFAULT '{}',
    annotations           jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT builds_state_check CHECK (state IN ('STAGING', 'STAGED', 'FAILED')),
    CONSTRAINT builds_lifecycle_type_check CHECK (lifecycle_type IN ('buildpack', 'docker'))
);
CREATE INDEX builds_app_guid_idx ON builds (app_guid);
CREATE INDEX builds_package_guid_idx ON builds (package_guid);
CREATE INDEX builds_created_at_idx ON builds (created_at, guid);
-- Cloud Controller lets an app have one STAGING build at a time. The
-- controller's resync also reads STAGING builds through this index.
CREATE UNIQUE INDEX builds_one_staging_per_app ON builds (app_guid) WHERE state = 'STAGING';

CREATE TABLE droplets (
    guid               text PRIMARY KEY,
    app_guid           text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    package_guid       text,
    build_guid         text REFERENCES builds (guid) ON DELETE SET NULL,
    state              text NOT NULL,
    error              text,
    lifecycle_type     text NOT NULL,
    -- image is the droplet image as the cluster pulls it, pinned by digest.
    image              text NOT NULL DEFAULT '',
    -- process_types maps each process type to its start command.
    process_types      jsonb NOT NULL DEFAULT '{}',
    -- buildpacks is an array of {name, buildpack_name, detect_output, version}.
    buildpacks         jsonb NOT NULL DEFAULT '[]',
    stack              text,
    execution_metadata text NOT NULL DEFAULT '',
    labels             jsonb NOT NULL DEFAULT '{}',
    annotations        jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT droplets_state_check CHECK (state IN ('AWAITING_UPLOAD', 'PROCESSING_UPLOAD', 'STAGING', 'COPYING',
        'STAGED', 'FAILED', 'EXPIRED')),
    CONSTRAINT droplets_lifecycle_type_check CHECK (lifecycle_type IN ('buildpack', 'docker')),
    CONSTRAINT droplets_process_types_check CHECK (jsonb_typeof(process_types) = 'object'),
    CONSTRAINT droplets_buildpacks_check CHECK (jsonb_typeof(buildpacks) = 'array')
);
CREATE INDEX droplets_app_guid_idx ON droplets (app_guid);
CREATE INDEX droplets_package_guid_idx ON droplets (package_guid);
CREATE INDEX droplets_build_guid_idx ON droplets (build_guid);
CREATE INDEX droplets_created_at_idx ON droplets (created_at, guid);

ALTER TABLE builds ADD CONSTRAINT builds_droplet_guid_fkey
    FOREIGN KEY (droplet_guid) REFERENCES droplets (guid) ON DELETE SET NULL;
CREATE INDEX builds_droplet_guid_idx ON builds (droplet_guid);

-- Deleting a droplet leaves its app with no current droplet.
ALTER TABLE apps ADD CONSTRAINT apps_current_droplet_guid_fkey
    FOREIGN KEY (current_droplet_guid) REFERENCES droplets (guid) ON DELETE SET NULL;

-- +goose Down
ALTER TABLE apps DROP CONSTRAINT apps_current_droplet_guid_fkey;
ALTER TABLE builds DROP CONSTRAINT builds_droplet_guid_fkey;
DROP TABLE droplets;
DROP TABLE builds;
