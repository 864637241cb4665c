#!/usr/bin/env bash
# Back up and restore a small floor run by the compose files beside this script.
#   backup.sh sqlite|postgres backup [FILE]   a consistent backup while SalesPulse runs, written
#                                             to FILE (default ./salespulse-<UTC time>.backup)
#   backup.sh sqlite|postgres restore FILE    stops SalesPulse, replaces its database with FILE,
#                                             starts it again (it migrates a backup of an earlier
#                                             release at start)
# The work is the image's own `salespulse backup|restore` (services/backup.py: SQLite's online
# backup API; pg_dump and pg_restore for PostgreSQL); the file goes through the pipe, so no
# folder is shared with the container. The file holds the floor's data and its alert channels'
# secrets: it is written readable by you alone; keep it somewhere other than this server.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { echo "usage: $0 sqlite|postgres backup [FILE] | restore FILE" >&2; exit 2; }
log() { printf 'backup.sh: %s\n' "$*" >&2; }

[ $# -ge 2 ] || usage
case "$1" in sqlite | postgres) ;; *) usage ;; esac
compose=(docker compose -f "$here/compose.$1.yml")
action=$2
shift 2

backup() {
  local file=${1:-salespulse-$(date -u +%Y%m%d-%H%M%S).backup}
  local partial="$file.partial"
  umask 077
  "${compose[@]}" exec -T salespulse sh -c \
    'f=$(mktemp) && trap "rm -f \"\$f\"" EXIT && salespulse backup "$f" >&2 && cat "$f"' \
    > "$partial" || { rm -f "$partial"; log "backup failed"; exit 1; }
  mv "$partial" "$file"
  log "backed up to $file ($(wc -c < "$file") bytes)"
}

restore() {
  local file=${1:-}
  [ -n "$file" ] || usage
  [ -f "$file" ] || { log "no backup file $file"; exit 1; }
  log "stopping SalesPulse"
  "${compose[@]}" stop salespulse
  if ! "${compose[@]}" run --rm --no-deps -T --entrypoint sh salespulse -c \
    'f=$(mktemp) && trap "rm -f \"\$f\"" EXIT && cat > "$f" && salespulse restore --replace "$f"' \
    < "$file"; then
    log "restore failed: the database is as it was; starting SalesPulse again"
    "${compose[@]}" start salespulse
    exit 1
  fi
  log "restored $file; starting SalesPulse"
  "${compose[@]}" start salespulse
}

case "$action" in
  backup) backup "$@" ;;
  restore) restore "$@" ;;
  *) usage ;;
esac
