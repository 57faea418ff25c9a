-- +goose Up
-- certificates are the TLS certificates uploaded for domains, one per
-- domain. certificate_chain is the PEM chain, leaf first, as validated on
-- upload; ca_certificate is the optional PEM CA the chain was verified
-- against ('' for the system roots). encrypted_private_key is the private
-- key sealed with the installation's certificate key (AES-256-GCM envelope,
-- bound to the row's guid), never the plain key. The columns from
-- not_before to sha256_fingerprint copy facts of the leaf certificate so
-- lists and expiry checks need not parse PEM.
--
-- domain_name is not a foreign key to domains, because certificates are
-- authorized by domain name. Deleting a domain, or the organization that
-- owns it, deletes its certificate in the same transaction (store code).
CREATE TABLE certificates (
    guid                  text PRIMARY KEY,
    domain_name           text NOT NULL,
    certificate_chain     text NOT NULL,
    ca_certificate        text NOT NULL DEFAULT '',
    encrypted_private_key bytea NOT NULL,
    not_before            timestamptz NOT NULL,
    not_after             timestamptz NOT NULL,
    dns_names             text[] NOT NULL,
    issuer                text NOT NULL,
    subject               text NOT NULL,
    serial_number         text NOT NULL,
    sha256_fingerprint    text NOT NULL,
    labels                jsonb NOT NULL DEFAULT '{}',
    annotations           jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- Domain names are stored in lower case, so this is unique without
    -- regard to case.
    CONSTRAINT certificates_domain_name_key UNIQUE (domain_name),
    CONSTRAINT certificates_domain_name_lower_check CHECK (domain_name = lower(domain_name))
);
CREATE INDEX certificates_not_after_idx ON certificates (not_after);
CREATE INDEX certificates_created_at_idx ON certificates (created_at, guid);

-- +goose Down
DROP TABLE certificates;
