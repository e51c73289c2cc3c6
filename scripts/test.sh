#!/usr/bin/env bash
# Run the whole test suite against the local PostgreSQL and Redis (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements-test.txt
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/prefarena}
export PREFARENA_TEST_BROKER_URL=${PREFARENA_TEST_BROKER_URL:-redis://127.0.0.1:6379/15}
# The app talks to the real Redis broker from the start; tasks run eagerly except in the
# tests that start a real worker (tests/conftest.py: celery_worker_process).
export CELERY_BROKER_URL=$PREFARENA_TEST_BROKER_URL
export CELERY_TASK_ALWAYS_EAGER=${CELERY_TASK_ALWAYS_EAGER:-1}
exec .venv/bin/pytest "$@"
