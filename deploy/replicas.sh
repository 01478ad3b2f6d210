#!/usr/bin/env bash
# Two subagents replicas on one PostgreSQL, on this machine, without Docker: Debian's postgresql package
# (a cluster of its own in the state directory, on 127.0.0.1), a tokens file, and HAProxy in front when
# it is installed. See deploy/README.md.
#
#   deploy/replicas.sh up      # start PostgreSQL, migrate, start the replicas (and HAProxy); print the URLs
#   deploy/replicas.sh status  # what is running
#   deploy/replicas.sh down    # stop everything (the state directory stays: runs, tokens)
#
# Settings (environment): SUBAGENTS_DEPLOY_DIR (state; default ~/.local/state/subagents-deploy, as root
# /var/lib/subagents-deploy),
# PG_PORT (55432), REPLICA_PORTS ("8801 8802"), LB_PORT (8800), SUBAGENTS (the command; default
# `subagents`), and the model's own: ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. Extra arguments after
# `up` go to every replica, e.g. `deploy/replicas.sh up --patterns all`.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then DEFAULT_STATE=/var/lib/subagents-deploy; else DEFAULT_STATE="$HOME/.local/state/subagents-deploy"; fi
STATE="${SUBAGENTS_DEPLOY_DIR:-$DEFAULT_STATE}"
PG_PORT="${PG_PORT:-55432}"
REPLICA_PORTS="${REPLICA_PORTS:-8801 8802}"
LB_PORT="${LB_PORT:-8800}"
read -r -a SUBAGENTS_CMD <<<"${SUBAGENTS:-subagents}"
HERE="$(cd "$(dirname "$0")" && pwd)"
STORE="postgresql://subagents@127.0.0.1:$PG_PORT/subagents"

say() { echo "replicas.sh: $*" >&2; }

pg_bin() {
    find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
pg_owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() {  # wait_port PORT PIDFILE: until something listens, or the process is gone
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        alive "$2" || return 1
        sleep 0.1
    done
    return 1
}

start_postgres() {
    local bin
    bin="$(pg_bin)"
    if [ -z "$bin" ]; then
        if [ "$(id -u)" = 0 ]; then
            say "installing PostgreSQL (apt-get install postgresql)"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            bin="$(pg_bin)"
        else
            say "PostgreSQL is not installed: sudo apt-get install postgresql"
            exit 1
        fi
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$STATE/pg"
    chown "$(pg_owner)" "$STATE/pg"
    if ! as_owner test -x "$STATE/pg"; then
        say "the postgres user cannot reach $STATE/pg: choose a SUBAGENTS_DEPLOY_DIR it can (e.g. /var/lib/subagents-deploy)"
        exit 1
    fi
    if [ ! -d "$STATE/pg/data" ]; then
        say "creating a PostgreSQL cluster in $STATE/pg/data"
        as_owner "$bin/initdb" -D "$STATE/pg/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$STATE/pg/data" -l "$STATE/pg/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $STATE/pg -c max_connections=200" start >/dev/null
    fi
    local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
    if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'subagents'")" ]; then
        "${psql[@]}" -c "CREATE ROLE subagents LOGIN"
        "${psql[@]}" -c "CREATE DATABASE subagents OWNER subagents"
    fi
    say "PostgreSQL on 127.0.0.1:$PG_PORT"
}

make_tokens() {
    if [ -f "$STATE/tokens" ]; then return; fi
    local name="${USER:-$(id -un)}"
    # `tokens new` prints the token on stderr and the line (its hash only) on stdout.
    "${SUBAGENTS_CMD[@]}" tokens new "$name" >"$STATE/tokens" 2>"$STATE/token.new"
    sed 's/.*: //' "$STATE/token.new" >"$STATE/token-$name"
    rm -f "$STATE/token.new"
    chmod 600 "$STATE/tokens" "$STATE/token-$name"
    say "made a token for $name: it is in $STATE/token-$name (the tokens file keeps only its hash);"
    say "add people with: ${SUBAGENTS_CMD[*]} tokens new NAME >> $STATE/tokens, then: $0 reload"
}

start_replicas() {
    "${SUBAGENTS_CMD[@]}" store migrate --store "$STORE" >&2
    local n=0 port
    for port in $REPLICA_PORTS; do
        n=$((n + 1))
        if alive "$STATE/replica-$n.pid"; then continue; fi
        # setsid: a replica outlives this shell; `down` stops it by the pid recorded here.
        setsid "${SUBAGENTS_CMD[@]}" serve --transport http --host 127.0.0.1 --port "$port" \
            --store "$STORE" --auth-tokens "$STATE/tokens" --trusted-proxy 127.0.0.1 "$@" \
            </dev/null >>"$STATE/replica-$n.log" 2>&1 &
        echo $! >"$STATE/replica-$n.pid"
    done
    n=0
    for port in $REPLICA_PORTS; do
        n=$((n + 1))
        wait_port "$port" "$STATE/replica-$n.pid" || { say "replica $n did not start; see $STATE/replica-$n.log"; exit 1; }
        say "replica $n: http://127.0.0.1:$port/mcp"
    done
}

start_balancer() {
    if ! command -v haproxy >/dev/null; then
        say "no HAProxy (apt-get install haproxy): point clients at one replica, or see deploy/README.md"
        return
    fi
    if alive "$STATE/haproxy.pid"; then return; fi
    local ports
    read -r -a ports <<<"$REPLICA_PORTS"
    LB_BIND="127.0.0.1:$LB_PORT" REPLICA_A="127.0.0.1:${ports[0]}" REPLICA_B="127.0.0.1:${ports[1]}" \
        haproxy -D -p "$STATE/haproxy.pid" -f "$HERE/haproxy.cfg"
    wait_port "$LB_PORT" "$STATE/haproxy.pid" || { say "HAProxy did not start"; exit 1; }
    say "load balancer: http://127.0.0.1:$LB_PORT/mcp"
}

stop_pid() {  # stop_pid FILE: SIGTERM (runs in flight are recorded as cancelled), then wait
    if alive "$1"; then
        local pid
        pid="$(cat "$1")"
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
}

case "${1:-}" in
up)
    shift
    mkdir -p "$STATE"
    start_postgres
    make_tokens
    start_replicas "$@"
    start_balancer
    say "store: $STORE"
    ;;
reload)  # the replicas read the tokens file again
    for pid in "$STATE"/replica-*.pid; do alive "$pid" && kill -HUP "$(cat "$pid")"; done
    ;;
status)
    for pid in "$STATE"/replica-*.pid "$STATE/haproxy.pid"; do
        [ -e "$pid" ] || continue
        if alive "$pid"; then echo "$(basename "$pid" .pid): running (pid $(cat "$pid"))"; else echo "$(basename "$pid" .pid): stopped"; fi
    done
    bin="$(pg_bin)"
    if [ -n "$bin" ] && [ -d "$STATE/pg/data" ] && as_owner "$bin/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1; then
        echo "postgresql: running on 127.0.0.1:$PG_PORT"
    else
        echo "postgresql: stopped"
    fi
    ;;
down)
    stop_pid "$STATE/haproxy.pid"
    for pid in "$STATE"/replica-*.pid; do [ -e "$pid" ] && stop_pid "$pid"; done
    bin="$(pg_bin)"
    if [ -n "$bin" ] && [ -d "$STATE/pg/data" ]; then
        as_owner "$bin/pg_ctl" -D "$STATE/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    say "stopped; the runs and tokens stay in $STATE"
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
