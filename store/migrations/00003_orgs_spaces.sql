-- +goose Up
-- Cloud Controller compares organization names, and space names within an
-- organization, without regard to case: "Dev" and "dev" collide. The unique
-- indexes keep the constraint names of 00001, so callers that match on them
-- keep working.
ALTER TABLE organizations DROP CONSTRAINT organizations_name_key;
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));

ALTER TABLE spaces DROP CONSTRAINT spaces_org_name_key;
CREATE UNIQUE INDEX spaces_org_name_key ON spaces (organization_guid, lower(name));
-- The names filter of GET /v3/spaces is case-insensitive too, across orgs.
CREATE INDEX spaces_lower_name_idx ON spaces (lower(name));

-- A suspended space blocks writes by anyone but admins and org managers.
ALTER TABLE spaces ADD COLUMN suspended boolean NOT NULL DEFAULT false;

-- label_selector filters use the jsonb operators ?, @> and ->>; the default
-- GIN operator class serves the first two.
CREATE INDEX organizations_labels_idx ON organizations USING gin (labels);
CREATE INDEX spaces_labels_idx ON spaces USING gin (labels);

-- Lists default to creation order; guid is the tiebreaker of every order.
CREATE INDEX organizations_created_at_idx ON organizations (created_at, guid);
CREATE INDEX spaces_created_at_idx ON spaces (created_at, guid);

-- +goose Down
DROP INDEX spaces_created_at_idx;
DROP INDEX organizations_created_at_idx;
DROP INDEX spaces_labels_idx;
DROP INDEX organizations_labels_idx;
ALTER TABLE spaces DROP COLUMN suspended;
DROP INDEX spaces_lower_name_idx;
DROP INDEX spaces_org_name_key;
ALTER TABLE spaces ADD CONSTRAINT spaces_org_name_key UNIQUE (organization_guid, name);
DROP INDEX organizations_name_key;
ALTER TABLE organizations ADD CONSTRAINT organizations_name_key UNIQUE (name);
