#!/usr/bin/env bash
# Run the whole test suite against the local PostgreSQL and Redis (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements-test.txt
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/prefarena}
export PREFARENA_TEST_BROKER_URL=${PREFARENA_TEST_BROKER_URL:-redis://127.0.0.1:6379/15}
exec .venv/bin/pytest "$@"
