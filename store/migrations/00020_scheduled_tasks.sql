-- +goose Up
-- A scheduled task, a Ferry extension, runs a command from its app's
-- current droplet on a cron schedule. The controller turns each one into a
-- Kubernetes CronJob in the space's namespace, and every run the CronJob
-- starts becomes a row in tasks with scheduled_task_guid set.
--
-- space_guid copies the app's space, because the notify trigger needs it
-- after a cascading delete has already removed the app row. Apps never move
-- between spaces, so the copy never goes stale.
CREATE TABLE scheduled_tasks (
    guid                     text PRIMARY KEY,
    app_guid                 text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    space_guid               text NOT NULL,
    name                     text NOT NULL,
    command                  text NOT NULL,
    -- template_process_guid is the process whose command and limits the
    -- scheduled task copied when it was created, or NULL.
    template_process_guid    text,
    -- schedule is a standard five-field cron expression or a descriptor
    -- such as @daily, as Kubernetes CronJobs accept them.
    schedule                 text NOT NULL,
    -- time_zone is an IANA time zone name, or NULL for the time zone of the
    -- cluster's kube-controller-manager.
    time_zone                text,
    concurrency_policy       text NOT NULL DEFAULT 'Allow',
    successful_history_limit integer NOT NULL DEFAULT 3 CHECK (successful_history_limit >= 0),
    failed_history_limit     integer NOT NULL DEFAULT 1 CHECK (failed_history_limit >= 0),
    -- deadline_seconds bounds how long one run may take, or NULL for no
    -- limit.
    deadline_seconds         bigint CHECK (deadline_seconds > 0),
    -- starting_deadline_seconds is how late a run may start before it is
    -- skipped, or NULL for no limit. Kubernetes documents that values
    -- under 10 may keep a CronJob from ever running.
    starting_deadline_seconds bigint CHECK (starting_deadline_seconds >= 10),
    suspended                boolean NOT NULL DEFAULT false,
    memory_in_mb             bigint NOT NULL CHECK (memory_in_mb > 0),
    disk_in_mb               bigint NOT NULL CHECK (disk_in_mb > 0),
    labels                   jsonb NOT NULL DEFAULT '{}',
    annotations              jsonb NOT NULL DEFAULT '{}',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scheduled_tasks_concurrency_policy_check CHECK (concurrency_policy IN ('Allow', 'Forbid', 'Replace')),
    CONSTRAINT scheduled_tasks_app_name_key UNIQUE (app_guid, name)
);
CREATE INDEX scheduled_tasks_space_guid_idx ON scheduled_tasks (space_guid);
CREATE INDEX scheduled_tasks_created_at_idx ON scheduled_tasks (created_at, guid);

-- Every change to a scheduled task is announced on the
-- ferry_scheduled_tasks channel with its space GUID, because that space's
-- namespace holds the CronJob.
-- +goose StatementBegin
CREATE FUNCTION ferry_notify_scheduled_task() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_scheduled_tasks', COALESCE(NEW.space_guid, OLD.space_guid));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER scheduled_tasks_notify AFTER INSERT OR UPDATE OR DELETE ON scheduled_tasks
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_scheduled_task();

-- +goose Down
DROP TRIGGER scheduled_tasks_notify ON scheduled_tasks;
DROP FUNCTION ferry_notify_scheduled_task();
DROP TABLE scheduled_tasks;
