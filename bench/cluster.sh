#!/usr/bin/env bash
# A production-shaped Lanyard deployment on loopback, from Debian's packages (docs/scaling.md):
#
#   HAProxy :HA_PORT (health check GET /readyz)
#     ├─ Lanyard 1..N (node src/main.ts, one SECRET_KEY, ISSUER = the HAProxy URL)
#     └─ … DATABASE_URL=postgres://lanyard@127.0.0.1:B1,127.0.0.1:B2/lanyard?target_session_attrs=read-write
#   PgBouncer B1 (transaction mode) → PostgreSQL primary  P1
#   PgBouncer B2 (transaction mode) → PostgreSQL standby  P2 (streaming, pg_basebackup -R)
#
# One PgBouncer per PostgreSQL node, as it is usually deployed next to the database: the instances
# list both and take the one that answers read-write, so promoting the standby needs no change to
# PgBouncer, HAProxy or the instances (docs/decisions/0045-database-failover.md).
#
# Usage: bench/cluster.sh up | down | status | promote | stop-primary | env
#   CLUSTER_DIR         state, logs and data (default ${TMPDIR:-/tmp}/lanyard-cluster)
#   CLUSTER_INSTANCES   number of Lanyard instances (default 3)
#   CLUSTER_COMPONENTS  all (default) | postgres (the primary and the standby only)
#   CLUSTER_FAST=1      fsync and synchronous_commit off (tests; never for figures)
#   Any other variable set when calling `up` (LOG_LEVEL, KEY_ACTIVATION_DELAY_SECONDS, …) reaches
#   the instances, which are this script's children.
# Needs: apt-get install -y haproxy pgbouncer postgresql (15), curl. Never touches the system
# cluster on 5432: both clusters live under CLUSTER_DIR on free loopback ports.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/lanyard-cluster}
STATE=$DIR/cluster.env
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
INSTANCES=${CLUSTER_INSTANCES:-3}
COMPONENTS=${CLUSTER_COMPONENTS:-all}

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

# initdb, pg_ctl and pgbouncer refuse to run as root: run them as postgres when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$1" ] && head -n1 "$1" || true; }

# N free loopback ports at once (all held open until every one is chosen, so none repeats),
# picked at random below the kernel's ephemeral range (ip_local_port_range): a port handed out
# by listen(0) and released could be taken, before the server it was meant for binds it, as the
# local port of any outgoing connection (the tests' load, another cluster starting beside).
free_ports() {
  node -e '
    const net = require("node:net");
    const { readFileSync } = require("node:fs");
    let low = 32768;
    try { low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low; } catch {}
    const from = 10000, to = Math.max(from + 1000, low);
    const n = Number(process.argv[1]); const servers = []; const ports = [];
    const next = () => {
      if (ports.length === n) { servers.forEach((s) => s.close()); console.log(ports.join(" ")); return; }
      const port = from + Math.floor(Math.random() * (to - from));
      const s = net.createServer();
      s.once("error", next);
      s.listen(port, "127.0.0.1", () => { servers.push(s); ports.push(port); next(); });
    };
    next();' "$1"
}

wait_for() { # description, seconds, command...
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what did not come up within ${seconds}s (logs in $DIR)"
    sleep 0.2
  done
}

# Every instance UP in HAProxy's view (its stats as CSV: column 18 is the status).
all_up() {
  local csv; csv=$(curl -fsS --max-time 2 "http://127.0.0.1:$HA_STATS_PORT/;csv") || return 1
  [ "$(awk -F, '$1 == "instances" && $2 != "BACKEND" && $18 == "UP"' <<<"$csv" | wc -l)" -eq "$INSTANCES" ]
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/readyz"; }

start_instance() { # index
  local i=$1 port_var="LANYARD_PORT_$1"
  local port=${!port_var}
  mkdir -p "$DIR/lanyard$i"
  (
    cd "$ROOT"
    # Development defaults without the demo data and the in-process mailbox (three instances
    # would each keep their own); mail goes to the log. Production differs by https and SMTP only.
    # Unnamed statements: PgBouncer 1.18 in transaction mode cannot keep a named one (decision 0070).
    export NODE_ENV=${NODE_ENV:-development} SEED_DEMO=false DEV_MAILBOX=false TRUST_PROXY=1 \
      LOG_LEVEL=${LOG_LEVEL:-warn} HOST=127.0.0.1 PORT="$port" ISSUER="$ISSUER" \
      DATABASE_URL="$DATABASE_URL" SECRET_KEY="$SECRET_KEY" DATA_DIR="$DIR/lanyard$i" \
      DATABASE_PREPARED_STATEMENTS=false
    nohup node --experimental-strip-types --no-warnings src/main.ts >"$DIR/lanyard$i.log" 2>&1 &
    echo $! >"$DIR/lanyard$i.pid"
  )
}

write_postgres_conf() { # data dir, port
  cat >>"$1/postgresql.conf" <<EOF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/run'
max_connections = 200
wal_level = replica
max_wal_senders = 5
hot_standby = on
logging_collector = off
EOF
  if [ "${CLUSTER_FAST:-}" = 1 ]; then
    printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$1/postgresql.conf"
  fi
}

write_pgbouncer() { # name, listen port, server port
  cat >"$DIR/$1.ini" <<EOF
[databases]
lanyard = host=127.0.0.1 port=$3 dbname=lanyard
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 40
; node-postgres sends these as startup parameters; in transaction mode PgBouncer cannot keep them
; per client, so they are role defaults in PostgreSQL instead (see up below).
ignore_startup_parameters = extra_float_digits,statement_timeout,idle_in_transaction_session_timeout,options
; A server that went away is tried again every second, and a client waits for a server
; connection 5 s at most: a failover surfaces as errors (503) instead of a queue.
server_login_retry = 1
server_connect_timeout = 2
query_wait_timeout = 5
log_connections = 0
log_disconnections = 0
logfile = $DIR/$1.log
pidfile = $DIR/$1.pid
EOF
}

cmd_up() {
  [ -x "$PGBIN/initdb" ] || die "no PostgreSQL server binaries (apt-get install -y postgresql)"
  if [ "$COMPONENTS" = all ]; then
    command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install -y haproxy)"
    command -v pgbouncer >/dev/null || die "pgbouncer is not installed (apt-get install -y pgbouncer)"
    command -v curl >/dev/null || die "curl is not installed (apt-get install -y curl)"
  fi
  [ ! -f "$STATE" ] || die "a cluster is already up in $DIR (bench/cluster.sh down first)"
  mkdir -p "$DIR/run"
  chmod 755 "$DIR"
  # PostgreSQL and PgBouncer (run as postgres) write their logs and pid files here.
  [ "$(id -u)" != 0 ] || chown postgres "$DIR" "$DIR/run"

  read -r PG_PRIMARY_PORT PG_STANDBY_PORT PGB_PRIMARY_PORT PGB_STANDBY_PORT HA_PORT HA_STATS_PORT rest < <(free_ports $((6 + INSTANCES)))
  local ports=($rest)
  SECRET_KEY=$(node -e 'console.log(require("node:crypto").randomBytes(32).toString("base64url"))')
  ISSUER="http://127.0.0.1:$HA_PORT"
  DATABASE_URL="postgres://lanyard@127.0.0.1:$PGB_PRIMARY_PORT,127.0.0.1:$PGB_STANDBY_PORT/lanyard?target_session_attrs=read-write"
  {
    echo "CLUSTER_DIR=$DIR"
    echo "PG_PRIMARY_PORT=$PG_PRIMARY_PORT"
    echo "PG_STANDBY_PORT=$PG_STANDBY_PORT"
    echo "PGB_PRIMARY_PORT=$PGB_PRIMARY_PORT"
    echo "PGB_STANDBY_PORT=$PGB_STANDBY_PORT"
    echo "HA_PORT=$HA_PORT"
    echo "HA_STATS_PORT=$HA_STATS_PORT"
    echo "INSTANCES=$INSTANCES"
    echo "COMPONENTS=$COMPONENTS"
    for i in $(seq 1 "$INSTANCES"); do echo "LANYARD_PORT_$i=${ports[$((i - 1))]}"; done
    echo "ISSUER=$ISSUER"
    echo "DATABASE_URL=$DATABASE_URL"
    # Straight to the two servers, without PgBouncer (the CLI and the database tests use it).
    echo "DIRECT_DATABASE_URL=postgres://lanyard@127.0.0.1:$PG_PRIMARY_PORT,127.0.0.1:$PG_STANDBY_PORT/lanyard?target_session_attrs=read-write"
    echo "SECRET_KEY=$SECRET_KEY"
  } >"$STATE"
  chmod 600 "$STATE"
  # shellcheck disable=SC1090
  . "$STATE"

  say "PostgreSQL primary on 127.0.0.1:$PG_PRIMARY_PORT"
  mkdir -p "$DIR/pg-primary" && chmod 700 "$DIR/pg-primary"
  [ "$(id -u)" != 0 ] || chown postgres "$DIR/pg-primary"
  as_pg "$PGBIN/initdb" -D "$DIR/pg-primary" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 \
    || die "initdb failed (see $DIR/initdb.log)"
  write_postgres_conf "$DIR/pg-primary" "$PG_PRIMARY_PORT"
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg-primary" -l "$DIR/pg-primary.log" -w -t 30 start >/dev/null \
    || { tail -n 20 "$DIR/pg-primary.log" >&2; die "the primary did not start (log above)"; }
  local psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres)
  # The bounds node-postgres would send at connect (PgBouncer drops them) are the role's
  # defaults instead; jit off because an OLTP service's statements are too short to repay it.
  "${psql[@]}" -d postgres <<'SQL'
CREATE ROLE lanyard LOGIN;
CREATE DATABASE lanyard OWNER lanyard;
ALTER ROLE lanyard SET statement_timeout = '5s';
ALTER ROLE lanyard SET idle_in_transaction_session_timeout = '15s';
ALTER ROLE lanyard SET jit = off;
SQL

  say "PostgreSQL standby on 127.0.0.1:$PG_STANDBY_PORT (pg_basebackup -R, streaming)"
  mkdir -p "$DIR/pg-standby" && chmod 700 "$DIR/pg-standby"
  [ "$(id -u)" != 0 ] || chown postgres "$DIR/pg-standby"
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres -D "$DIR/pg-standby" -R -X stream -c fast --no-sync
  sed -i "s/^port = $PG_PRIMARY_PORT\$/port = $PG_STANDBY_PORT/" "$DIR/pg-standby/postgresql.conf"
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg-standby" -l "$DIR/pg-standby.log" -w -t 30 start >/dev/null \
    || { tail -n 20 "$DIR/pg-standby.log" >&2; die "the standby did not start (log above)"; }
  [ "$(psql -X -tA -h 127.0.0.1 -p "$PG_STANDBY_PORT" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()')" = t ] \
    || die "the standby is not in recovery"

  if [ "$COMPONENTS" = postgres ]; then
    say "up: PostgreSQL primary and standby (state in $STATE)"
    return
  fi

  say "PgBouncer (transaction mode) on $PGB_PRIMARY_PORT → primary, $PGB_STANDBY_PORT → standby"
  printf '"lanyard" ""\n"postgres" ""\n' >"$DIR/userlist.txt"
  write_pgbouncer pgbouncer-primary "$PGB_PRIMARY_PORT" "$PG_PRIMARY_PORT"
  write_pgbouncer pgbouncer-standby "$PGB_STANDBY_PORT" "$PG_STANDBY_PORT"
  as_pg pgbouncer -d -q "$DIR/pgbouncer-primary.ini"
  as_pg pgbouncer -d -q "$DIR/pgbouncer-standby.ini"
  wait_for "PgBouncer" 10 psql -X -tA -h 127.0.0.1 -p "$PGB_PRIMARY_PORT" -U lanyard -d lanyard -c 'SELECT 1'

  say "Lanyard × $INSTANCES (ISSUER $ISSUER)"
  # The first applies the migrations (an advisory lock serialises them anyway); then the rest.
  start_instance 1
  wait_for "Lanyard 1 (port $LANYARD_PORT_1)" 60 ready "$LANYARD_PORT_1"
  for i in $(seq 2 "$INSTANCES"); do start_instance "$i"; done
  for i in $(seq 2 "$INSTANCES"); do
    local port_var="LANYARD_PORT_$i"
    wait_for "Lanyard $i (port ${!port_var})" 60 ready "${!port_var}"
  done

  say "HAProxy on $ISSUER (stats on http://127.0.0.1:$HA_STATS_PORT/)"
  {
    cat <<EOF
global
  maxconn 4096
  pidfile $DIR/haproxy.pid
  # Runtime API (bench/cluster-throughput.ts takes instances out with it: set server … state maint).
  stats socket $DIR/haproxy.sock mode 600 level admin
  log stderr format short local0 warning

defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 10s
  # A connection refused by a dead instance is retried on another one; a request already sent
  # is never replayed (it may not be idempotent): the requests in flight are lost, and those sent
  # on a kept-alive connection to it before the health check takes it out.
  retries 2
  option redispatch

frontend lanyard
  bind 127.0.0.1:$HA_PORT
  option forwardfor
  default_backend instances

backend instances
  balance roundrobin
  option httpchk
  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1
  http-check expect status 200
  # Out after two failed checks (~1 s for an instance that refuses connections), back after two
  # good ones. A check may take 2 s: a saturated but healthy instance answers /readyz late (its
  # event loop is busy), and taking it out would only move its load onto the others.
  timeout check 2s
  default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
EOF
    for i in $(seq 1 "$INSTANCES"); do
      local port_var="LANYARD_PORT_$i"
      echo "  server lanyard$i 127.0.0.1:${!port_var} check"
    done
    cat <<EOF

listen stats
  bind 127.0.0.1:$HA_STATS_PORT
  stats enable
  stats uri /
  stats refresh 5s
EOF
  } >"$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy.cfg does not validate"
  haproxy -D -f "$DIR/haproxy.cfg" 2>>"$DIR/haproxy.log"
  wait_for "HAProxy's health checks" 10 all_up
  say "up: $ISSUER (state in $STATE; bench/cluster.sh status)"
}

cmd_status() {
  [ -f "$STATE" ] || die "no cluster in $DIR"
  # shellcheck disable=SC1090
  . "$STATE"
  local role
  for node in primary standby; do
    local port_var="PG_${node^^}_PORT"
    if role=$(psql -X -tA -h 127.0.0.1 -p "${!port_var}" -U postgres -d postgres -c "SELECT CASE WHEN pg_is_in_recovery() THEN 'in recovery (standby)' ELSE 'read-write (primary)' END" 2>/dev/null); then
      printf '%-22s 127.0.0.1:%-6s %s\n' "postgres-$node" "${!port_var}" "$role"
    else
      printf '%-22s 127.0.0.1:%-6s %s\n' "postgres-$node" "${!port_var}" "down"
    fi
  done
  [ "$COMPONENTS" = all ] || return 0
  for node in primary standby; do
    local port_var="PGB_${node^^}_PORT"
    local pid; pid=$(pid_of "$DIR/pgbouncer-$node.pid")
    printf '%-22s 127.0.0.1:%-6s %s\n' "pgbouncer-$node" "${!port_var}" "$(alive "$pid" && echo "running (pid $pid)" || echo down)"
  done
  for i in $(seq 1 "$INSTANCES"); do
    local port_var="LANYARD_PORT_$i" pid; pid=$(pid_of "$DIR/lanyard$i.pid")
    local state=down
    if alive "$pid"; then state="running (pid $pid), $(ready "${!port_var}" && echo ready || echo 'not ready')"; fi
    printf '%-22s 127.0.0.1:%-6s %s\n' "lanyard$i" "${!port_var}" "$state"
  done
  local pid; pid=$(pid_of "$DIR/haproxy.pid")
  printf '%-22s 127.0.0.1:%-6s %s\n' haproxy "$HA_PORT" "$(alive "$pid" && echo "running (pid $pid)" || echo down)"
  if alive "$pid"; then
    curl -fsS --max-time 2 "http://127.0.0.1:$HA_STATS_PORT/;csv" 2>/dev/null \
      | awk -F, '$1 == "instances" && $2 != "BACKEND" { printf "  haproxy → %-12s %s\n", $2, $18 }'
  fi
}

cmd_down() {
  [ -f "$STATE" ] || { say "no cluster in $DIR"; return 0; }
  # shellcheck disable=SC1090
  . "$STATE"
  local pid
  pid=$(pid_of "$DIR/haproxy.pid"); alive "$pid" && kill "$pid" || true
  for i in $(seq 1 "$INSTANCES"); do
    pid=$(pid_of "$DIR/lanyard$i.pid"); alive "$pid" && kill "$pid" || true
  done
  for node in primary standby; do
    pid=$(pid_of "$DIR/pgbouncer-$node.pid"); alive "$pid" && kill "$pid" || true
  done
  for i in $(seq 1 "$INSTANCES"); do
    pid=$(pid_of "$DIR/lanyard$i.pid")
    for _ in $(seq 1 60); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && kill -9 "$pid" || true
  done
  for node in standby primary; do
    if [ -f "$DIR/pg-$node/postmaster.pid" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$DIR/pg-$node" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
  done
  if [ "${KEEP:-}" = 1 ]; then
    rm -f "$STATE"
    say "down (files kept in $DIR)"
  else
    rm -rf "$DIR"
    say "down"
  fi
}

cmd_promote() {
  [ -f "$STATE" ] || die "no cluster in $DIR"
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg-standby" -w -t 30 promote >/dev/null
  say "standby promoted"
}

cmd_stop_primary() {
  [ -f "$STATE" ] || die "no cluster in $DIR"
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg-primary" -m fast -w -t 30 stop >/dev/null
  say "primary stopped"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  promote) cmd_promote ;;
  stop-primary) cmd_stop_primary ;;
  env) [ -f "$STATE" ] || die "no cluster in $DIR"; grep -v '^SECRET_KEY=' "$STATE" ;;
  *) echo "usage: bench/cluster.sh up|down|status|promote|stop-primary|env" >&2; exit 2 ;;
esac
