#!/bin/sh
# Runs once, when the PostgreSQL volume is new: Earful's own role and database beside Airflow's
# metadata database. The password comes from the environment (docker/.env), never from here.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$EARFUL_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE earful LOGIN PASSWORD :'pw';
CREATE DATABASE earful OWNER earful;
SQL
