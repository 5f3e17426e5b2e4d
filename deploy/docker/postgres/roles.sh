#!/bin/sh
# docker-entrypoint-initdb.d: the service roles, with passwords from the environment.
# The owner role (POSTGRES_USER) owns the schema and runs migrations; grants.sql gives
# the others exactly what they need once the tables exist.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE flashsale_worker LOGIN PASSWORD '${PG_WORKER_PASSWORD}';
CREATE ROLE flashsale_ops LOGIN PASSWORD '${PG_OPS_PASSWORD}';
SQL
