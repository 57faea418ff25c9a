-- +goose Up
-- Revisions follow Cloud Controller in two more ways. An app's first
-- revision is described "Initial revision." and later ones "New droplet
-- deployed.". A droplet change made while the transaction-local setting
-- ferry.revision_on_droplet is 'off' records no revision. A canceled
-- deployment assigns the previous droplet again that way, because Cloud
-- Controller's cancel records no revision either.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ferry_revision_on_droplet() RETURNS trigger AS $$
BEGIN
    IF NEW.current_droplet_guid IS NOT NULL AND NEW.revisions_enabled
        AND NEW.current_droplet_guid IS DISTINCT FROM OLD.current_droplet_guid
        AND current_setting('ferry.revision_on_droplet', true) IS DISTINCT FROM 'off' THEN
        IF EXISTS (SELECT 1 FROM revisions WHERE app_guid = NEW.guid) THEN
            PERFORM ferry_record_revision(NEW.guid, NEW.current_droplet_guid, 'New droplet deployed.');
        ELSE
            PERFORM ferry_record_revision(NEW.guid, NEW.current_droplet_guid, 'Initial revision.');
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ferry_revision_on_droplet() RETURNS trigger AS $$
BEGIN
    IF NEW.current_droplet_guid IS NOT NULL AND NEW.revisions_enabled
        AND NEW.current_droplet_guid IS DISTINCT FROM OLD.current_droplet_guid THEN
        PERFORM ferry_record_revision(NEW.guid, NEW.current_droplet_guid, 'New droplet deployed.');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
