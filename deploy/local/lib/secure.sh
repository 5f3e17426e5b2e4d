# The secured stores of `up.sh --secure`: a throw-away CA and the certificates it signs
# (openssl, in $STATE_DIR/tls), and a second PostgreSQL cluster that takes TLS only
# (`ssl = on`, `hostssl` rules, every plain-text connection rejected). Sourced by
# deploy/local/lib.sh.
# shellcheck shell=bash

PG_SECURE_PORT=${PG_SECURE_PORT:-$(port_of postgres-secure)}
REDIS_SECURE_PORT=${REDIS_SECURE_PORT:-$(port_of redis-secure)}
TLS_DIR=$STATE_DIR/tls

# tls_material: the CA, a server certificate for localhost and 127.0.0.1 signed by it, a
# client certificate it signed, and a second CA that signed nothing here (for the wrong-CA tests). Made once.
tls_material() {
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$TLS_DIR"
  local ca
  for ca in ca other-ca; do
    [ -f "$TLS_DIR/$ca.pem" ] && continue
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=flash-sale local $ca" \
      -keyout "$TLS_DIR/$ca.key" -out "$TLS_DIR/$ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  done
  if [ ! -f "$TLS_DIR/client.pem" ]; then
    # A client certificate for mutual TLS (Redis takes one when given).
    openssl req -newkey rsa:2048 -nodes -subj "/CN=flash-sale client" \
      -keyout "$TLS_DIR/client.key" -out "$TLS_DIR/client.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >"$TLS_DIR/client.ext"
    openssl x509 -req -in "$TLS_DIR/client.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
      -CAcreateserial -days 825 -extfile "$TLS_DIR/client.ext" -out "$TLS_DIR/client.pem" 2>/dev/null
  fi
  [ -f "$TLS_DIR/server.pem" ] && return 0
  say "making a throw-away CA and a server certificate for localhost ($TLS_DIR)"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$TLS_DIR/server.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 825 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.pem" 2>/dev/null
}

# pg_secure_up: the TLS-only PostgreSQL cluster "secure" on $PG_SECURE_PORT, its role
# flashsale (password flashsale) and database flashsale.
pg_secure_up() {
  local version conf
  version=$(pg_version)
  conf=/etc/postgresql/$version/secure
  if [ ! -d "$conf" ]; then
    say "creating the TLS-only postgresql cluster 'secure' on port $PG_SECURE_PORT"
    as_root pg_createcluster "$version" secure -p "$PG_SECURE_PORT" >/dev/null
  fi
  as_root install -o postgres -g postgres -m 0644 "$TLS_DIR/server.pem" "$conf/server.pem"
  as_root install -o postgres -g postgres -m 0600 "$TLS_DIR/server.key" "$conf/server.key"
  as_root tee "$conf/conf.d/secure.conf" >/dev/null <<CONF
port = $PG_SECURE_PORT
listen_addresses = '127.0.0.1,::1'
ssl = on
ssl_cert_file = '$conf/server.pem'
ssl_key_file = '$conf/server.key'
password_encryption = 'scram-sha-256'
CONF
  as_root tee "$conf/pg_hba.conf" >/dev/null <<HBA
# up.sh --secure: TLS only. The admin over the Unix socket; every TCP client over TLS
# with a password; plain text rejected.
local     all  postgres                peer
hostssl   all  all       127.0.0.1/32  scram-sha-256
hostssl   all  all       ::1/128       scram-sha-256
hostnossl all  all       0.0.0.0/0     reject
hostnossl all  all       ::/0          reject
HBA
  if pg_isready -q -h 127.0.0.1 -p "$PG_SECURE_PORT"; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" secure reload
  else
    say "starting the TLS-only postgresql on 127.0.0.1:$PG_SECURE_PORT"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" secure start
    touch "$STATE_DIR/started/postgresql-secure"
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$PG_SECURE_PORT" && break; sleep 0.2; done
  fi
  local sql="psql -p $PG_SECURE_PORT -d postgres -v ON_ERROR_STOP=1 -Atq"
  if [ "$(as_postgres $sql -c "select 1 from pg_roles where rolname = 'flashsale'")" != 1 ]; then
    as_postgres $sql -c "create role flashsale login password 'flashsale' createdb"
  fi
  if [ "$(as_postgres $sql -c "select 1 from pg_database where datname = 'flashsale'")" != 1 ]; then
    as_postgres $sql -c "create database flashsale owner flashsale"
  fi
}

# pg_secure_down: stops the cluster if up.sh started it.
pg_secure_down() {
  [ -f "$STATE_DIR/started/postgresql-secure" ] || return 0
  say "stopping the TLS-only postgresql"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" secure stop || true
  rm -f "$STATE_DIR/started/postgresql-secure"
}

# redis_secure_up: a Redis taking TLS only on $REDIS_SECURE_PORT (the plain port off), the
# password flashsale for its default user, client certificates optional (mutual TLS when
# given, checked against the CA).
redis_secure_up() {
  local dir=$STATE_DIR/redis-secure
  if redis-cli --tls --cacert "$TLS_DIR/ca.pem" -p "$REDIS_SECURE_PORT" -a flashsale --no-auth-warning ping 2>/dev/null | grep -q PONG; then
    return 0
  fi
  # A server on the port under certificates of another checkout: stopped, to start ours.
  if port_open "$REDIS_SECURE_PORT"; then
    redis-cli --tls --insecure -p "$REDIS_SECURE_PORT" -a flashsale --no-auth-warning shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 50); do port_open "$REDIS_SECURE_PORT" || break; sleep 0.1; done
  fi
  say "starting the TLS-only redis on 127.0.0.1:$REDIS_SECURE_PORT"
  mkdir -p "$dir"
  redis-server --port 0 --tls-port "$REDIS_SECURE_PORT" --bind 127.0.0.1 --daemonize yes \
    --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
    --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients optional \
    --requirepass flashsale --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
    --save "" --appendonly no
  touch "$STATE_DIR/started/redis-secure"
  wait_for_port "$REDIS_SECURE_PORT" "TLS-only redis" 10
}

# redis_secure_down: stops it if up.sh started it.
redis_secure_down() {
  [ -f "$STATE_DIR/started/redis-secure" ] || return 0
  say "stopping the TLS-only redis"
  local pid
  pid=$(cat "$STATE_DIR/redis-secure/redis.pid" 2>/dev/null) && kill "$pid" 2>/dev/null || true
  rm -f "$STATE_DIR/started/redis-secure"
}

# secure_env: what the secured stores' clients read (appended to $STATE_DIR/env).
secure_env() {
  cat <<ENV
export SECURE_DATABASE_URL="postgres://flashsale:flashsale@localhost:$PG_SECURE_PORT/flashsale?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
export SECURE_REDIS_URL="rediss://:flashsale@localhost:$REDIS_SECURE_PORT"
export TLS_DIR=$TLS_DIR
ENV
}
