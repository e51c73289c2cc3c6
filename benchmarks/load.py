"""Load benchmark: simulated annotators voting through the real HTTP path.

    .venv/bin/python benchmarks/load.py                       # 200 annotators, 60 s, both modes
    .venv/bin/python benchmarks/load.py --annotators 50 --seconds 20 --modes zero

The stack is the production one on 127.0.0.1: gunicorn (DJANGO_DEBUG=0) on PostgreSQL, a real
Celery worker on Redis (live Elo refreshes), sessions in the database. The scratch database
(created if missing) holds the MT-Bench arena with all 33 models: 84,480 comparisons.

Each simulated annotator is an anonymous browser without JavaScript: GET the arena (serves a
pair), POST the vote (302), GET the next pair, and so on, with either no think time (``zero``)
or a realistic one (``think``: log-normal around 8 s, as people read two answers). The client is
plain asyncio with one connection per request (gunicorn's sync workers close them).

Reported side by side: votes per second, p50/p95/p99 of the vote and next-pair requests,
errors, acknowledged votes against rows in the database (lost or duplicated votes), and, in the
same run, PostgreSQL's raw single-row INSERT + COMMIT rate on this machine as the physical
reference. Targets (issue 8): 0 errors, 0 lost votes, p95 under 100 ms, and a vote throughput
of at least 25% of the raw insert rate.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MTBENCH = ROOT.parent / "shared" / "data" / "mtbench"
SLUG = "bench-load"
TOKEN = re.compile(rb'name="assignment" value="([0-9a-f-]{36})"')
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- a minimal HTTP/1.1 client ------------------------------------------------------------


@dataclass
class Browser:
    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes, float]:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "User-Agent: prefarena-load",
            "Connection: close",
            f"Referer: http://{self.host}:{self.port}/",
        ]
        if cookie:
            head.append(f"Cookie: {cookie}")
        if body:
            head += [
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(body)}",
            ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        elapsed = time.perf_counter() - started
        header, _, content = raw.partition(b"\r\n\r\n")
        lines = header.split(b"\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        for line in lines[1:]:
            if line.lower().startswith(b"set-cookie:"):
                name, _, rest = line.split(b":", 1)[1].strip().partition(b"=")
                self.cookies[name.decode()] = rest.split(b";", 1)[0].decode()
        return status, content, elapsed


def vote_form(page: bytes, choice: str) -> tuple[str, bytes] | None:
    """The served pair's assignment token and the urlencoded vote for ``choice``, read from
    the arena page as a browser without JavaScript submits it; None when no pair is shown."""
    token, csrf = TOKEN.search(page), CSRF.search(page)
    if token is None or csrf is None:
        return None
    assignment = token.group(1).decode()
    body = (
        f"assignment={assignment}&choice={choice}"
        f"&csrfmiddlewaretoken={quote(csrf.group(1).decode())}"
    ).encode()
    return assignment, body


@dataclass
class Tally:
    vote_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    acknowledged: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def annotator(host: str, port: int, deadline: float, think: bool, tally: Tally) -> None:
    browser = Browser(host, port)
    arena = f"/arena/{SLUG}/"
    rng = random.Random()
    status, page, elapsed = await browser.request("GET", arena)
    tally.next_ms.append(elapsed * 1000)
    if status != 200:
        tally.error(f"first pair: HTTP {status}")
        return
    while time.monotonic() < deadline:
        form = vote_form(page, rng.choice(["left", "right", "tie"]))
        if status != 200 or form is None:
            tally.error(f"next pair: HTTP {status}" if status != 200 else "next pair: no pair")
            return
        token, body = form
        if think:
            await asyncio.sleep(min(60.0, rng.lognormvariate(math.log(8.0), 0.5)))
            if time.monotonic() >= deadline:
                return
        status, _, elapsed = await browser.request("POST", f"{arena}vote/", body)
        if status != 302:
            tally.error(f"vote: HTTP {status}")
            return
        tally.vote_ms.append(elapsed * 1000)
        tally.acknowledged += 1
        status, page, elapsed = await browser.request("GET", f"{arena}?after={token}")
        tally.next_ms.append(elapsed * 1000)


# --- the stack ----------------------------------------------------------------------------


def env_for(url: str, broker: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "load-benchmark-secret-key-not-for-production-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_CONN_MAX_AGE": "60",
        # Every simulated annotator comes from 127.0.0.1: one network, not a cap to measure.
        "ARENA_MAX_OPEN_PAIRS_PER_NETWORK": "0",
    }


def prepare(url: str) -> None:
    from benchmarks.leaderboard_db import _ensure_database, _setup_django

    _ensure_database(url)
    _setup_django(url)
    from annotation.importers import mtbench_import
    from annotation.models import Project

    if not Project.objects.filter(slug=SLUG).exists():
        print("importing the MT-Bench arena (84,480 comparisons) ...", flush=True)
        mtbench_import(directory=MTBENCH, project_slug=SLUG, votes_per_comparison=3)
    # Rate limits off: the benchmark's clients vote as fast as the server lets them.
    Project.objects.filter(slug=SLUG).update(
        max_votes_per_minute=0, max_votes_per_day=0, gold_rate=0.0
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def vote_rows() -> int:
    from annotation.models import Vote

    return Vote.objects.filter(comparison__project__slug=SLUG).count()


def duplicate_votes() -> int:
    from django.db.models import Count

    from annotation.models import Vote

    return (
        Vote.objects.filter(comparison__project__slug=SLUG)
        .values("annotator_id", "comparison_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )


def raw_insert_rate(url: str, seconds: float = 5.0) -> float:
    """Single-row INSERT + COMMIT per statement on one connection: the disk's fsync rate."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE load_probe (id bigserial primary key, at timestamptz, v text)"
        )
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute("INSERT INTO load_probe (at, v) VALUES (now(), 'x')")
            done += 1
        return done / (time.perf_counter() - started)


def start(command: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """Start a server in its own process group (stopped as a group), its output to ``log``."""
    if log is None:
        return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env=env, cwd=ROOT, start_new_session=True, stdout=out, stderr=out
        )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


async def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.5)
    raise SystemExit(f"gunicorn did not come up on {host}:{port}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _crowd(args: argparse.Namespace, think: bool, tally: Tally) -> None:
    deadline = time.monotonic() + args.seconds
    clients = [
        annotator("127.0.0.1", args.port, deadline, think, tally) for _ in range(args.annotators)
    ]
    await asyncio.gather(*clients)


def run_mode(args: argparse.Namespace, think: bool) -> dict[str, object]:
    before = vote_rows()
    tally = Tally()
    started = time.perf_counter()
    asyncio.run(_crowd(args, think, tally))
    elapsed = time.perf_counter() - started
    rows = vote_rows() - before
    return {
        "mode": "think time" if think else "zero think",
        "votes/s": tally.acknowledged / elapsed,
        "acknowledged": tally.acknowledged,
        "rows": rows,
        "vote p50/p95/p99": tuple(percentile(tally.vote_ms, q) for q in (0.5, 0.95, 0.99)),
        "next p50/p95/p99": tuple(percentile(tally.next_ms, q) for q in (0.5, 0.95, 0.99)),
        "errors": dict(tally.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/prefarena_bench_load")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--modes", default="zero,think", help="zero and/or think")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    prepare(args.db)
    env = env_for(args.db, args.broker)
    # Production settings serve hashed static files: collect them as production would.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    web = start(
        [sys.executable, "-m", "gunicorn", "prefarena.wsgi:application", "--bind",
         f"127.0.0.1:{args.port}", "--workers", str(args.workers), "--backlog", "2048",
         "--preload"],
        env,
    )  # fmt: skip
    worker = start(
        [sys.executable, "-m", "celery", "-A", "prefarena", "worker", "-Q", "default",
         "--concurrency", "1", "-l", "warning"],
        env,
    )  # fmt: skip
    try:
        asyncio.run(wait_for_port("127.0.0.1", args.port))
        insert_rate = raw_insert_rate(args.db)
        results = [run_mode(args, mode == "think") for mode in args.modes.split(",")]
    finally:
        stop(web)
        stop(worker)
    duplicates = duplicate_votes()
    print(
        f"\n{args.annotators} annotators, {args.seconds:.0f} s per mode, "
        f"gunicorn with {args.workers} sync workers"
    )
    print(f"PostgreSQL raw single-row INSERT + COMMIT: {insert_rate:,.0f} rows/s")
    for result in results:
        vote = "/".join(f"{v:.0f}" for v in result["vote p50/p95/p99"])
        nxt = "/".join(f"{v:.0f}" for v in result["next p50/p95/p99"])
        lost = result["acknowledged"] - result["rows"]
        print(
            f"{result['mode']:<11} {result['votes/s']:7.1f} votes/s "
            f"({result['votes/s'] / insert_rate:.0%} of raw inserts); vote p50/p95/p99 {vote} ms; "
            f"next pair {nxt} ms; acknowledged {result['acknowledged']}, rows {result['rows']} "
            f"(lost {lost}); errors {result['errors'] or 0}"
        )
    print(f"duplicate votes in the database: {duplicates}")
    print("targets: 0 errors, 0 lost, p95 < 100 ms, votes/s >= 25% of raw inserts")


if __name__ == "__main__":
    main()
