-- +goose Up
-- Every change to an app or one of its processes is announced on the
-- ferry_apps channel with the app's guid, so the controller reconciles it at
-- once instead of at its next resync. Notifications are sent on commit and
-- collapsed per transaction and payload by PostgreSQL.

-- +goose StatementBegin
CREATE FUNCTION ferry_notify_app() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'apps' THEN
        PERFORM pg_notify('ferry_apps', COALESCE(NEW.guid, OLD.guid));
    ELSE
        PERFORM pg_notify('ferry_apps', COALESCE(NEW.app_guid, OLD.app_guid));
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER apps_notify AFTER INSERT OR UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_app();
CREATE TRIGGER processes_notify AFTER INSERT OR UPDATE OR DELETE ON processes
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_app();

-- +goose Down
DROP TRIGGER processes_notify ON processes;
DROP TRIGGER apps_notify ON apps;
DROP FUNCTION ferry_notify_app();
