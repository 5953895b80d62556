#!/usr/bin/env bash
# Start a PostgreSQL server for the key-store tests on 127.0.0.1 and print its URL.
#
# Idempotent; run as root (CI and developer machines are root).  Installs Debian's
# `postgresql` if missing, keeps its data in $PGDATA_DIR (default /tmp/leafmap_tiles_pg),
# listens on 127.0.0.1:$PG_PORT only (default 55432), and makes a superuser role
# `leafmap` (password `leafmap`) whose URL is printed on the last line as a KEY=VALUE
# line (scripts/test.sh exports such lines for the tests):
#     LEAFMAP_TILES_TEST_PG=postgresql://leafmap:leafmap@127.0.0.1:55432/leafmap_tiles_test
# Export it for the tests:  export "$(bash scripts/setup_postgres.sh | tail -1)"
# (tests also find a server started by this script without the variable).
# Stop it with:  su postgres -c "$(ls -d /usr/lib/postgresql/*/bin | tail -1)/pg_ctl -D /tmp/leafmap_tiles_pg stop"
set -euo pipefail

PG_PORT="${PG_PORT:-55432}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/leafmap_tiles_pg}"
PG_USER=leafmap
PG_PASSWORD=leafmap
PG_DB=leafmap_tiles_test

log() { echo "setup_postgres: $*" >&2; }

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    log "installing Debian postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi; }

if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    log "initialising cluster in $PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    chown postgres:postgres "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    pwfile="$(mktemp)"
    echo postgres > "$pwfile"
    chown postgres "$pwfile"
    as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -A md5 --username=postgres --pwfile="$pwfile" >&2
    rm -f "$pwfile"
fi

if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    log "starting server on 127.0.0.1:$PG_PORT"
    mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp -c fsync=off" start >&2
fi

export PGPASSWORD=postgres
psql_admin() { "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" != 1 ]; then
    psql_admin "CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD'"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" != 1 ]; then
    psql_admin "CREATE DATABASE $PG_DB OWNER $PG_USER"
fi
echo "LEAFMAP_TILES_TEST_PG=postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
