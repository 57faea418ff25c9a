-- +goose Up
-- processes are the runnable parts of an app (web, worker, ...): how many
-- instances of the app's current droplet run with which command, resources
-- and health checks. Every app has a web process; the other types come from
-- the droplet's process types and from manifests.
CREATE TABLE processes (
    guid                                text PRIMARY KEY,
    app_guid                            text NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    type                                text NOT NULL,
    -- NULL runs the command the current droplet defines for the type.
    command                             text,
    instances                           integer NOT NULL DEFAULT 1,
    memory_in_mb                        bigint NOT NULL,
    disk_in_mb                          bigint NOT NULL,
    -- -1 is unlimited.
    log_rate_limit_in_bytes_per_second  bigint NOT NULL DEFAULT -1,
    -- An absolute CPU limit, a Ferry extension. NULL derives it from the
    -- memory limit.
    cpu_millicores                      integer,
    health_check_type                   text NOT NULL DEFAULT 'port',
    health_check_endpoint               text,
    -- Health check durations are seconds; NULL takes the runtime default.
    health_check_timeout                integer,
    health_check_invocation_timeout     integer,
    health_check_interval               integer,
    readiness_health_check_type         text NOT NULL DEFAULT 'process',
    readiness_health_check_endpoint     text,
    readiness_health_check_invocation_timeout integer,
    readiness_health_check_interval     integer,
    -- version changes whenever a change needs new instances, such as a new
    -- command, new limits or new health checks, but not a new instance count.
    version                             text NOT NULL,
    labels                              jsonb NOT NULL DEFAULT '{}',
    annotations                         jsonb NOT NULL DEFAULT '{}',
    created_at                          timestamptz NOT NULL DEFAULT now(),
    updated_at                          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processes_app_type_key UNIQUE (app_guid, type),
    CONSTRAINT processes_instances_check CHECK (instances >= 0),
    CONSTRAINT processes_memory_check CHECK (memory_in_mb > 0),
    CONSTRAINT processes_disk_check CHECK (disk_in_mb > 0),
    CONSTRAINT processes_log_rate_limit_check CHECK (log_rate_limit_in_bytes_per_second >= -1),
    CONSTRAINT processes_cpu_millicores_check CHECK (cpu_millicores > 0),
    CONSTRAINT processes_health_check_type_check CHECK (health_check_type IN ('port', 'process', 'http')),
    CONSTRAINT processes_readiness_health_check_type_check CHECK (readiness_health_check_type IN ('port', 'process', 'http'))
);
CREATE INDEX processes_created_at_idx ON processes (created_at, guid);
CREATE INDEX processes_type_idx ON processes (type);
CREATE INDEX processes_labels_idx ON processes USING gin (labels);

-- app_route_intents keeps what the last manifests asked for an app's routes
-- until routes exist: the routes to map, or no route, or a generated one.
CREATE TABLE app_route_intents (
    app_guid      text PRIMARY KEY REFERENCES apps (guid) ON DELETE CASCADE,
    -- An array of {"route", "protocol", "options"} objects.
    routes        jsonb NOT NULL DEFAULT '[]',
    no_route      boolean NOT NULL DEFAULT false,
    random_route  boolean NOT NULL DEFAULT false,
    default_route boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_route_intents_routes_check CHECK (jsonb_typeof(routes) = 'array')
);

-- manifest_applies holds the manifest of a space.apply_manifest job until
-- the job has applied it. The manifest contains environment variable values,
-- which are secrets, so the row is deleted when the job finishes.
CREATE TABLE manifest_applies (
    job_guid   text PRIMARY KEY REFERENCES jobs (guid) ON DELETE CASCADE,
    space_guid text NOT NULL REFERENCES spaces (guid) ON DELETE CASCADE,
    actor_guid text NOT NULL,
    actor_name text NOT NULL,
    manifest   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE manifest_applies;
DROP TABLE app_route_intents;
DROP TABLE processes;
