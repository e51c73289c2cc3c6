"""Production settings: secrets only from the environment, deploy checks clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy() -> None:
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-0123456789",
        DJANGO_ALLOWED_HOSTS="arena.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_secret_key_refuses_to_start() -> None:
    result = run_manage("check", DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="arena.example.org")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_web_processes_never_import_torch() -> None:
    """Resolving every URL imports every view; none of them may pull in torch or transformers
    (seconds of start-up and hundreds of MB per web worker). Only the GPU worker loads them."""
    code = (
        "import sys, django; django.setup()\n"
        "from django.urls import get_resolver\n"
        "def walk(patterns):\n"
        "    for p in patterns:\n"
        "        walk(p.url_patterns) if hasattr(p, 'url_patterns') else p.callback\n"
        "walk(get_resolver().url_patterns)\n"
        "import prefarena.wsgi, annotation.tasks, models_backend.tasks\n"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "prefarena.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _dockerfile_collectstatic_env() -> dict[str, str]:
    """The variables the Dockerfile's collectstatic step sets, read from the Dockerfile."""
    line = next(
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN") and "collectstatic" in line
    )
    words = line.removeprefix("RUN").split()
    return dict(word.split("=", 1) for word in words[: words.index("python")])


def test_the_images_static_files_serve_pages_with_debug_off(tmp_path: Path) -> None:
    """The image collected its static files with DEBUG on, so without the manifest the
    production storage needs: every page of the container was a 500."""
    build_env = _dockerfile_collectstatic_env()
    collected = run_manage(
        "collectstatic", "--noinput", "-v0", **build_env, PREFARENA_STATIC_ROOT=str(tmp_path)
    )
    assert collected.returncode == 0, collected.stderr
    page = run_manage(
        "shell",
        "-c",
        "from django.test import Client\n"
        "r = Client().get('/accounts/login/', HTTP_HOST='arena.example.org', secure=True)\n"
        "print(r.status_code, 'arena.' in r.content.decode())",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_ALLOWED_HOSTS="arena.example.org",
        PREFARENA_STATIC_ROOT=str(tmp_path),
    )
    assert page.stdout.split()[-2:] == ["200", "True"], page.stdout + page.stderr


def test_behind_proxy_0_means_no_proxy_is_trusted() -> None:
    """DJANGO_BEHIND_PROXY=0 used to turn the trust on: any client could then set its own
    X-Forwarded-For (the per-network cap, fraud fingerprints) and X-Forwarded-Proto."""
    show = "from django.conf import settings; print(settings.BEHIND_PROXY)"
    for value, trusted in (("0", "False"), ("false", "False"), ("", "False"), ("1", "True")):
        result = run_manage("shell", "-c", show, DJANGO_BEHIND_PROXY=value)
        assert result.stdout.split()[-1:] == [trusted], (value, result.stdout + result.stderr)
