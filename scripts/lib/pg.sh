# Shared by the load scripts: a throwaway PostgreSQL cluster (initdb/pg_ctl as the postgres user on
# a loopback port, fsync and synchronous_commit on, its socket and data under a directory of the
# caller's work directory). Source it, then:
#   pg_start DIR PORT     creates and starts the cluster in DIR (server settings added from
#                         PG_SERVER_OPTS, e.g. "-c log_min_duration_statement=100") (DIR's parent must be readable by
#                         the postgres user: chmod 755 it)
#   pg_create_db NAME     creates database NAME and prints its URL
#   pg_stop               stops the cluster, if one was started (call it from the EXIT trap)
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DIR=""
PG_PORT=""

pg_start() {
  PG_DIR=$1 PG_PORT=$2
  mkdir -p "$PG_DIR" && chown postgres "$PG_DIR"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 ${PG_SERVER_OPTS:-}" start >/dev/null
}

pg_create_db() {
  runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE \"$1\"" >/dev/null
  echo "postgresql://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_stop() {
  if [ -n "$PG_DIR" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    PG_DIR=""
  fi
}
