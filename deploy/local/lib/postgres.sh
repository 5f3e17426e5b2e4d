# The local PostgreSQL cluster of the Debian package: its port, its version directory,
# waiting for it, and running as the postgres OS user. Sourced by deploy/local/lib.sh.
# shellcheck shell=bash

PG_PORT=${PG_PORT:-$(port_of postgres)}

# Run as the postgres OS user (peer authentication on the Unix socket).
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

# The version directory of the local PostgreSQL cluster.
pg_version() { ls /etc/postgresql | sort -V | tail -n 1; }
# wait_for_postgres: until PostgreSQL accepts connections on loopback (10 s at most).
wait_for_postgres() {
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && return 0; sleep 0.2; done
  die "postgresql did not come up on 127.0.0.1:$PG_PORT"
}
