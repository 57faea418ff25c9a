-- +goose Up
-- tasks are one-off runs of a command from an app's droplet, as Cloud
-- Controller's /v3/tasks defines them. The controller runs each one as a
-- Kubernetes Job and moves it through PENDING, RUNNING and CANCELING to
-- SUCCEEDED or FAILED.

CREATE TABLE tasks (
    guid                 text PRIMARY KEY,
    app_guid             text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    name                 text NOT NULL,
    command              text NOT NULL,
    state                text NOT NULL,
    -- sequence_id numbers an app's tasks from 1 in creation order.
    sequence_id          bigint NOT NULL,
    memory_in_mb         bigint NOT NULL,
    disk_in_mb           bigint NOT NULL,
    -- log_rate_limit_in_bytes_per_second is -1 for unlimited.
    log_rate_limit_in_bytes_per_second bigint NOT NULL DEFAULT -1,
    -- droplet_guid is the app's current droplet when the task was created;
    -- the task runs its image.
    droplet_guid         text REFERENCES droplets (guid) ON DELETE SET NULL,
    failure_reason       text,
    -- scheduled_task_guid names the scheduled task whose run this is, or
    -- NULL. It carries no foreign key so scheduled tasks can be added and
    -- removed independently.
    scheduled_task_guid  text,
    -- job_name is the Kubernetes Job that runs the task, or NULL before the
    -- controller created it. A task inserted with a job_name (a scheduled
    -- run whose Job a CronJob created) is only watched, never created.
    job_name             text,
    created_by_user_guid text NOT NULL DEFAULT '',
    labels               jsonb NOT NULL DEFAULT '{}',
    annotations          jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_state_check CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELING')),
    CONSTRAINT tasks_app_sequence_unique UNIQUE (app_guid, sequence_id)
);
CREATE INDEX tasks_droplet_guid_idx ON tasks (droplet_guid);
CREATE INDEX tasks_created_at_idx ON tasks (created_at, guid);
CREATE INDEX tasks_scheduled_task_guid_idx ON tasks (scheduled_task_guid) WHERE scheduled_task_guid IS NOT NULL;
-- The controller's resync reads the unfinished tasks through this index.
CREATE INDEX tasks_active_idx ON tasks (state) WHERE state IN ('PENDING', 'RUNNING', 'CANCELING');

-- task_sequences holds the last sequence_id given to each app's tasks. One
-- upsert both reserves and returns the next number, so concurrent creates
-- never collide, and numbers are not reused after tasks are deleted.
CREATE TABLE task_sequences (
    app_guid         text PRIMARY KEY REFERENCES apps (guid) ON DELETE CASCADE,
    last_sequence_id bigint NOT NULL
);

-- Every insert or state change of a task is announced on the ferry_tasks
-- channel with the task's guid, so the controller acts on it at once instead
-- of at its next resync.

-- +goose StatementBegin
CREATE FUNCTION ferry_notify_task() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_tasks', NEW.guid);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE OF state, job_name ON tasks
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_task();

-- +goose Down
DROP TRIGGER tasks_notify ON tasks;
DROP FUNCTION ferry_notify_task();
DROP TABLE task_sequences;
DROP TABLE tasks;
