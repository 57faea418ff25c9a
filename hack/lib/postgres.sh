# shellcheck shell=bash
# PostgreSQL for the local environment: a private cluster in
# FERRY_POSTGRES_DIR, run as the postgres user (the server refuses root),
# listening on 127.0.0.1 only, with one role and database named ferry.
# Sourced after common.sh.

POSTGRES_USER_NAME=postgres
POSTGRES_DATA="$FERRY_POSTGRES_DIR/data"
POSTGRES_SOCKET_DIR="$FERRY_POSTGRES_DIR/run"
POSTGRES_PASSWORD_FILE="$SECRET_DIR/postgres-password"

postgres_bindir() {
  local dir
  if dir="$(pg_config --bindir 2>/dev/null)" && [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
    printf '%s\n' "$dir"
    return 0
  fi
  for dir in /usr/lib/postgresql/15/bin /usr/local/bin; do
    if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

as_postgres() {
  setpriv --reuid="$POSTGRES_USER_NAME" --regid="$POSTGRES_USER_NAME" --init-groups "$@"
}

postgres_password() {
  if [[ ! -s "$POSTGRES_PASSWORD_FILE" ]]; then
    (umask 077 && openssl rand -hex 24 >"$POSTGRES_PASSWORD_FILE")
  fi
  cat "$POSTGRES_PASSWORD_FILE"
}

database_url() {
  printf 'postgres://ferry:%s@127.0.0.1:%s/ferry?sslmode=disable' "$(postgres_password)" "$POSTGRES_PORT"
}

init_postgres() {
  [[ -f "$POSTGRES_DATA/PG_VERSION" ]] && return 0
  id "$POSTGRES_USER_NAME" >/dev/null 2>&1 ||
    die "user $POSTGRES_USER_NAME is missing: install PostgreSQL 15 (make setup)"
  rm -rf "$POSTGRES_DATA"
  mkdir -p "$POSTGRES_DATA" "$POSTGRES_SOCKET_DIR"
  chown "$POSTGRES_USER_NAME:" "$FERRY_POSTGRES_DIR" "$POSTGRES_DATA" "$POSTGRES_SOCKET_DIR"
  chmod 0700 "$FERRY_POSTGRES_DIR" "$POSTGRES_DATA"
  as_postgres "$PG_BIN/initdb" -D "$POSTGRES_DATA" -U postgres -E UTF8 --no-locale \
    --auth-local=peer --auth-host=scram-sha-256 >>"$LOG_DIR/postgres.log" 2>&1 ||
    fail_component postgres "initdb failed in $POSTGRES_DATA"
  # Durable enough for a development database: a crash can lose the last
  # commits but never corrupts the cluster.
  cat >>"$POSTGRES_DATA/postgresql.conf" <<CONF

# Local environment settings.
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$POSTGRES_SOCKET_DIR'
synchronous_commit = off
max_connections = 200
logging_collector = off
CONF
}

psql_admin() {
  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$POSTGRES_SOCKET_DIR" -p "$POSTGRES_PORT" -U postgres -d postgres "$@"
}

ensure_ferry_database() {
  local password
  password="$(postgres_password)"
  # The password reaches psql on stdin, never on a command line.
  {
    printf "\\set pw '%s'\n" "$password"
    cat <<'SQL'
-- Keeps the statements below, which carry the password, out of the server log.
SET log_min_error_statement = panic;
SELECT format('CREATE ROLE ferry LOGIN CREATEDB PASSWORD %L', :'pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ferry') \gexec
SELECT format('ALTER ROLE ferry PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE ferry OWNER ferry'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ferry') \gexec
SQL
  } | psql_admin >>"$LOG_DIR/postgres.log" 2>&1 ||
    fail_component postgres "rejected creating the ferry role and database"
}

start_postgres() {
  stage_begin postgres
  if already_running postgres; then
    return 0
  fi
  PG_BIN="$(postgres_bindir)" || die "PostgreSQL server binaries (initdb, postgres) not found: run make setup"
  check_port_free postgres "127.0.0.1:$POSTGRES_PORT"
  mkdir -p "$(dirname "$FERRY_POSTGRES_DIR")"
  init_postgres
  mkdir -p "$POSTGRES_SOCKET_DIR"
  chown "$POSTGRES_USER_NAME:" "$POSTGRES_SOCKET_DIR"
  # A postmaster killed with SIGKILL leaves its pid file behind, and the next
  # start refuses to run while that file names a live process.
  if [[ -f "$POSTGRES_DATA/postmaster.pid" ]]; then
    local old
    old="$(head -n1 "$POSTGRES_DATA/postmaster.pid")"
    if [[ ! -d "/proc/$old" ]]; then
      rm -f "$POSTGRES_DATA/postmaster.pid"
    fi
  fi
  START_WRAPPER=(setpriv --reuid="$POSTGRES_USER_NAME" --regid="$POSTGRES_USER_NAME" --init-groups)
  start_process postgres "$PG_BIN/postgres" -D "$POSTGRES_DATA"
  wait_for postgres "connections on 127.0.0.1:$POSTGRES_PORT" \
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT"
  ensure_ferry_database
  stage_end
}

# Fast shutdown (SIGINT): ends open sessions and checkpoints, where SIGTERM
# would wait for every client to disconnect.
stop_postgres() {
  stop_process postgres INT
}
