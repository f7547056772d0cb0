#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks, with apt-get, only where
# missing: psql (the tests drive it as a subprocess), a PostgreSQL server (tests start
# their own as the `postgres` user on a free loopback port, in a temporary directory), and
# the drivers test/drivers/ runs against a real server: asyncpg, psycopg 3 and its pool,
# psycopg2 and SQLAlchemy for Debian's /usr/bin/python3, pgJDBC and a JDK to compile with.
# Run by `npm test` before the tests and by .ci/run; does nothing when all is there.
set -euo pipefail

missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)

# Python drivers: imported by the system interpreter (not a pyenv or venv python3 on PATH).
py_module() {
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1
}
py_module asyncpg || missing+=(python3-asyncpg)
py_module psycopg || missing+=(python3-psycopg)
py_module psycopg_pool || missing+=(python3-psycopg-pool)
py_module psycopg2 || missing+=(python3-psycopg2)
py_module sqlalchemy || missing+=(python3-sqlalchemy)

# pgJDBC and javac (the test compiles a small program against it).
[ -r /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)

if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
