#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster (Debian's pg_virtualenv, from
# postgresql-common): KEYSMITH_TEST_DATABASE_URL names its server, and the cluster is
# dropped when the command ends. Usage: scripts/with-postgres.sh -- COMMAND [ARGS…]
set -euo pipefail
[ "${1:-}" = "--" ] && shift
# pg_virtualenv runs the command with PGHOST, PGPORT, PGUSER and PGPASSWORD set.
exec pg_virtualenv -- sh -c '
  export KEYSMITH_TEST_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:${PGPORT:-5432}/postgres"
  exec "$@"' sh "$@"
