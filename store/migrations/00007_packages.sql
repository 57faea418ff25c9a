-- +goose Up
-- packages are an app's source: bits uploaded by cf push and stored as a
-- one-layer image in Ferry's registry, or a docker image reference.

CREATE TABLE packages (
    guid            text PRIMARY KEY,
    app_guid        text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    type            text NOT NULL,
    state           text NOT NULL,
    -- image is, for bits, the package image as Ferry reaches it, pinned by
    -- digest, and '' until the upload finishes; for docker, the image
    -- reference the user gave.
    image           text NOT NULL DEFAULT '',
    -- checksum is the hex SHA-256 digest of a bits package's image
    -- manifest, or '' before the upload.
    checksum        text NOT NULL DEFAULT '',
    -- error says why a bits upload failed, or is NULL.
    error           text,
    docker_username text,
    -- docker_password is a secret: never logged, presented only as "***".
    -- TODO: encrypt it at rest once Ferry has a database encryption key.
    docker_password text,
    labels          jsonb NOT NULL DEFAULT '{}',
    annotations     jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT packages_type_check CHECK (type IN ('bits', 'docker')),
    CONSTRAINT packages_state_check CHECK (state IN ('AWAITING_UPLOAD', 'PROCESSING_UPLOAD', 'READY', 'FAILED',
        'COPYING', 'EXPIRED'))
);
CREATE INDEX packages_app_guid_idx ON packages (app_guid, created_at);
CREATE INDEX packages_created_at_idx ON packages (created_at, guid);
CREATE INDEX packages_labels_idx ON packages USING gin (labels);

-- +goose Down
DROP TABLE packages;
