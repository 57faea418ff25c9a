-- +goose Up
-- Identity for the embedded UAA-compatible endpoints: users who log in, the
-- token signing key, refresh tokens and revoked access tokens.

-- uaa_users are login identities. id is the same guid as the Cloud
-- Controller users row of that person, but there is no foreign key either
-- way: a UAA user may exist before POST /v3/users creates the Cloud
-- Controller record, and a Cloud Controller user may belong to an origin
-- whose identities live elsewhere.
CREATE TABLE uaa_users (
    id            text PRIMARY KEY,
    username      text NOT NULL,
    origin        text NOT NULL DEFAULT 'uaa',
    -- password_hash is a bcrypt hash, NULL for users of external origins,
    -- who cannot log in with a password here.
    password_hash text,
    given_name    text NOT NULL DEFAULT '',
    family_name   text NOT NULL DEFAULT '',
    email         text NOT NULL DEFAULT '',
    -- groups are scopes granted on top of an ordinary user's, such as
    -- cloud_controller.admin.
    groups        text[] NOT NULL DEFAULT '{}',
    -- generation increases with every password change, and refresh tokens
    -- issued under an older generation are no longer accepted.
    generation    bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uaa_users_username_check CHECK (username <> ''),
    CONSTRAINT uaa_users_origin_check CHECK (origin <> '')
);
CREATE UNIQUE INDEX uaa_users_username_origin_key ON uaa_users (lower(username), origin);

-- signing_keys contains the RSA keys that sign access tokens. At most one key
-- is active, because the unique index on a constant makes a second active
-- row a conflict, so concurrent first starts agree on one key. Inactive rows
-- are room for a later key rotation, which nothing implements yet.
CREATE TABLE signing_keys (
    kid             text PRIMARY KEY,
    private_key_pem text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX signing_keys_one_active_key ON signing_keys ((true)) WHERE active;

-- refresh_tokens records every refresh token issued. The token itself is a
-- MAC-protected JWT kept only by the client. A row contains its jti and what
-- a refresh needs to decide whether the token is still good.
CREATE TABLE refresh_tokens (
    jti             text PRIMARY KEY,
    -- user_id is the uaa_users id, NULL for tokens issued to a client alone.
    user_id         text,
    client_id       text NOT NULL,
    scopes          text[] NOT NULL,
    -- generation is the user's generation at issue.
    generation      bigint NOT NULL,
    -- access_jti is the jti of the newest access token issued with this
    -- refresh token, so revoking that access token revokes the session.
    access_jti      text NOT NULL,
    revoked         boolean NOT NULL DEFAULT false,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_access_jti_idx ON refresh_tokens (access_jti);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

-- revoked_tokens lists access tokens revoked before they expire. Rows past
-- expires_at are useless, because the token fails its expiry check anyway,
-- and are deleted.
CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

-- +goose Down
DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
DROP TABLE uaa_users;
