#!/usr/bin/env bash
# A throwaway PostgreSQL server for the run store tests: Debian's package, a cluster in a temp dir,
# owned by a non-root user, listening on 127.0.0.1 at a free port. Source this file, then
#   pg_start   # exports SUBAGENTS_TEST_POSTGRES_URL
#   pg_stop    # stops the server and removes the cluster
# PG_OPTIONS adds server settings, e.g. PG_OPTIONS="-c fsync=off" for tests that need no durability.

_pg_bin() {
    find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    if [ -z "$(_pg_bin)" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local bin port
    bin="$(_pg_bin)"
    PG_OWNER="$(id -un)"
    if [ "$(id -u)" = 0 ]; then  # PostgreSQL refuses to run as root
        PG_OWNER=postgres
        id "$PG_OWNER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OWNER"
    fi
    PG_DIR="$(mktemp -d)"
    chown "$PG_OWNER" "$PG_DIR"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    _pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
    # shellcheck disable=SC2086
    _pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=200 ${PG_OPTIONS:-}" start >/dev/null
    _pg_as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres subagents_test
    PG_BIN="$bin"
    export SUBAGENTS_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/subagents_test"
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (cluster in $PG_DIR)"
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
        rm -rf "$PG_DIR"
    fi
}
