#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks, with apt-get, only where
# missing: psql (the tests drive it as a subprocess) and a PostgreSQL server (tests start
# their own as the `postgres` user on a free loopback port, in a temporary directory).
# Run by `npm test` before the tests and by .ci/run; does nothing when all is there.
set -euo pipefail

missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
