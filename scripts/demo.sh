#!/usr/bin/env bash
# Run the demo arena on SQLite with in-process (eager) tasks: needs only Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements.txt
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
.venv/bin/python manage.py migrate --noinput -v0
password=${DEMO_ADMIN_PASSWORD:-$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(9))')}
.venv/bin/python manage.py load_demo --admin-password "$password"
port=${PORT:-8000}
echo
echo "  Demo arena:   http://127.0.0.1:${port}/arena/mt-bench-demo/"
echo "  Leaderboard:  http://127.0.0.1:${port}/arena/mt-bench-demo/leaderboard/  (log in as admin)"
echo "  Admin:        http://127.0.0.1:${port}/admin/   login: admin / ${password}"
echo
exec .venv/bin/python manage.py runserver "127.0.0.1:${port}"
