-- +goose Up
-- start_count goes up by one whenever an app is started from STOPPED and on
-- every restart, in the same UPDATE that sets its state. The controller puts
-- it into the pod template, so a restart replaces running instances even
-- when nothing else about the app changed.
ALTER TABLE apps ADD COLUMN start_count bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE apps DROP COLUMN start_count;
