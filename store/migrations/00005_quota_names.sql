-- +goose Up
-- Cloud Controller treats organization quota names as case-insensitive, so
-- "Gold" and "gold" collide. Space quota names stay case-sensitive, as they
-- are in Cloud Controller. The index keeps the constraint's name, which the
-- API translates into "Organization Quota 'NAME' already exists."
ALTER TABLE organization_quotas DROP CONSTRAINT organization_quotas_name_key;
CREATE UNIQUE INDEX organization_quotas_name_key ON organization_quotas (lower(name));

-- +goose Down
DROP INDEX organization_quotas_name_key;
ALTER TABLE organization_quotas ADD CONSTRAINT organization_quotas_name_key UNIQUE (name);
