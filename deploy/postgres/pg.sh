#!/usr/bin/env bash
# A local PostgreSQL for development and tests, from Debian's `postgresql` package binaries.
#   pg.sh up      initdb (once), start on 127.0.0.1:$PG_PORT, create role and database, wait
#   pg.sh down    stop it; the data stays
#   pg.sh url     print the database URL
# Settings (environment): PG_PORT (55432), PG_HOME_DIR, PG_DB / PG_USER / PG_PASSWORD (salespulse).
set -euo pipefail

port=${PG_PORT:-55432}
db=${PG_DB:-salespulse}
user=${PG_USER:-salespulse}
password=${PG_PASSWORD:-salespulse}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# PostgreSQL refuses to run as root: as root, run it as the `postgres` system user, with a data
# directory that user can reach.
if [ "$(id -u)" = 0 ]; then
  home=${PG_HOME_DIR:-/var/lib/salespulse/postgres}
  as_pg() { runuser -u postgres -- "$@"; }
else
  home=${PG_HOME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salespulse/postgres}
  as_pg() { "$@"; }
fi
data="$home/data-$port"

log() { printf 'pg.sh: %s\n' "$*" >&2; }

ready() { "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; }

init() {
  [ -f "$data/PG_VERSION" ] && return 0
  log "initdb in $data"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$home"
  as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
max_connections = 200
shared_buffers = 256MB
fsync = ${PG_FSYNC:-on}
CONF
}

create_db() {
  local psql=("$bindir/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
  if ! "${psql[@]}" -tAc "select 1 from pg_roles where rolname='$user'" | grep -q 1; then
    "${psql[@]}" -c "create role $user login createdb password '$password'"
  fi
  if ! "${psql[@]}" -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
    "${psql[@]}" -c "create database $db owner $user"
  fi
}

up() {
  [ -n "$bindir" ] || { log "no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
  if ! ready; then
    init
    log "starting PostgreSQL on 127.0.0.1:$port"
    as_pg "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
  fi
  create_db
  log "ready: $(url)"
}

down() {
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null && log "stopped"
  else
    log "not running"
  fi
}

url() { echo "postgresql://$user:$password@127.0.0.1:$port/$db"; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  url) url ;;
  *) echo "usage: $0 up|down|url" >&2; exit 2 ;;
esac
