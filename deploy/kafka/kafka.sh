#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, combined broker+controller) from the official jars.
#   kafka.sh up     resolve the jars with Maven (once, cached), format storage (once), start, wait
#   kafka.sh down   stop it; its data stays for the next `up`
#   kafka.sh status exit 0 when a broker answers on the port
# Settings (environment): KAFKA_VERSION, KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# KAFKA_HOME_DIR (~/.cache/salespulse/kafka), KAFKA_HEAP (512m).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")}
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
home=${KAFKA_HOME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salespulse/kafka}
jars="$home/jars-$version"
state="$home/node-$port"
pidfile="$state/kafka.pid"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

resolve_jars() {
  [ -f "$jars/.complete" ] && return 0
  log "resolving org.apache.kafka:kafka_2.13:$version and its dependencies with Maven into $jars"
  local work; work=$(mktemp -d)
  cp "$here/pom.xml" "$work/pom.xml"
  rm -rf "$jars.partial"
  (cd "$work" && mvn -q -B -Dkafka.version="$version" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$jars.partial")
  rm -rf "$work" "$jars"
  mv "$jars.partial" "$jars"
  touch "$jars/.complete"
}

write_config() {
  mkdir -p "$state/data"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" -e "s|@DATA@|$state/data|g" \
    "$here/server.properties" > "$state/server.properties"
}

java_run() { (java_exec "$@"); }

# exec: when started in the background, $! is the JVM itself, so `down` can signal it.
java_exec() {
  exec java -Xms${KAFKA_HEAP:-512m} -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/log4j2.xml" \
    -Dkafka.logs.dir="$state" -cp "$jars/*" "$@"
}

format_storage() {
  [ -f "$state/data/meta.properties" ] && return 0
  local cluster_id; cluster_id=$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  log "formatting KRaft storage in $state/data (cluster $cluster_id)"
  java_run kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" --standalone >/dev/null
}

running_pid() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"
}

wait_ready() {
  # Ready = a client gets metadata back. kafka-broker-api-versions would need the tools jar's
  # wrapper; asking for the cluster's metadata through the admin client class is the same test.
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  while (( SECONDS < deadline )); do
    if port_open "$port" && java_run org.apache.kafka.tools.TopicCommand \
         --bootstrap-server "127.0.0.1:$port" --list >/dev/null 2>&1; then
      log "broker ready on 127.0.0.1:$port"
      return 0
    fi
    running_pid >/dev/null || { log "broker exited; see $state/server.log"; tail -n 30 "$state/server.log" >&2 || true; return 1; }
    sleep 1
  done
  log "broker not ready after ${KAFKA_START_TIMEOUT:-90}s; see $state/server.log"
  return 1
}

up() {
  if running_pid >/dev/null; then log "already running (pid $(running_pid))"; wait_ready; return; fi
  if port_open "$port"; then log "something already listens on 127.0.0.1:$port; using it"; return 0; fi
  resolve_jars
  write_config
  format_storage
  log "starting Apache Kafka $version on 127.0.0.1:$port"
  java_exec kafka.Kafka "$state/server.properties" > "$state/server.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  disown
  wait_ready
}

down() {
  local pid; pid=$(running_pid) || { log "not running"; return 0; }
  log "stopping broker (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }; sleep 1; done
  log "broker did not stop in 60s; killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) port_open "$port" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
