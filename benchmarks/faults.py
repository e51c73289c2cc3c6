"""Fault benchmark: kill the Celery worker, restart Redis and crash PostgreSQL under load.

    .venv/bin/python benchmarks/faults.py                     # 40 annotators, prints the report
    .venv/bin/python benchmarks/faults.py --annotators 16 --keep

Everything runs on private servers started for the run, never on the shared ones: a fresh
PostgreSQL cluster (initdb into a temporary folder, as the ``postgres`` user when run as
root) and a ``redis-server`` without persistence, each on a free port, plus the production
stack on top of them: gunicorn (DJANGO_DEBUG=0) and a real ``celery worker``. Simulated
annotators without JavaScript (``benchmarks/load.py``'s client) fetch a pair and vote in a
loop while the faults happen, one after the other:

1. worker: an export job is started and held in the middle of its run (its next query waits
   on a table lock), the worker is killed with SIGKILL and a new one started. Redis redelivers
   the unacknowledged task after the visibility timeout and the job is redone exactly once.
2. redis: the broker and cache are killed and started again, empty, on the same port. Votes
   go on meanwhile. The run supervises the worker as production does (docker compose
   ``restart: unless-stopped``): a worker that exits by itself is started again and the
   reason is reported (Celery 5.7 exits when Redis drops while it holds unacked tasks).
3. postgresql: the cluster is stopped with ``-m immediate`` (a crash), kept down a few
   seconds and started again; gunicorn and the worker are not touched.

Reported and checked (``tests/test_faults.py`` asserts each one on a smaller run): every vote
the server acknowledged (302) is in the database exactly once, no vote row appears that no
client sent, no HTTP 500 at all, clear 503s only while PostgreSQL is down, the same gunicorn
serves votes again by itself after each fault, and the interrupted export is redone once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import Browser, env_for, start, stop, vote_form  # noqa: E402

SLUG = "bench-faults"
DEMO = ROOT / "annotation" / "demo_data" / "mtbench"
UNAVAILABLE = b"The database is unavailable right now"
CHOICES = ("left", "right", "tie")
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Config:
    annotators: int = 40
    web_workers: int = 4
    warmup: float = 5.0  # seconds of load before the first fault
    settle: float = 4.0  # seconds of load between faults
    redis_down: float = 4.0
    postgres_down: float = 5.0
    visibility_timeout: int = 10  # Redis redelivers a dead worker's task after this
    think: float = 0.2  # mean pause of an annotator before voting (seconds)
    keep: bool = False  # keep the temporary folder (logs, data) for a post-mortem


class FaultRunError(RuntimeError):
    """The run itself could not be carried out (a server did not start, a wait timed out)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.2) -> float:
    """Poll ``check()`` until it is truthy; returns the seconds it took, or fails loudly."""
    started = time.monotonic()
    last_error: BaseException | None = None
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except FaultRunError:
            raise
        except Exception as exc:  # a server coming up fails in many ways
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise FaultRunError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


# --- private servers ----------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway cluster; crashes with ``pg_ctl stop -m immediate`` like a killed server."""

    def __init__(self, base: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found and shutil.which("initdb") is None:
            raise FaultRunError("no PostgreSQL server binaries (initdb) on this machine")
        self.bin = Path(found[-1]).parent if found else Path(shutil.which("initdb") or "").parent
        self.data = base / "pgdata"
        self.sockets = base / "pgsock"
        self.log = base / "postgres.log"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/prefarena"
        # initdb refuses to run as root: run the server binaries as the postgres user then.
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            self.user = {"user": account.pw_uid, "group": account.pw_gid}
            os.chown(base, account.pw_uid, account.pw_gid)
        for folder in (self.data, self.sockets):
            folder.mkdir()
            if self.user:
                os.chown(folder, self.user["user"], self.user["group"])
        self.log.touch()
        if self.user:
            os.chown(self.log, self.user["user"], self.user["group"])

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.data.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self.user,
        )
        if result.returncode != 0:
            raise FaultRunError(f"{' '.join(args[:2])} failed: {result.stderr or result.stdout}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip

    def crash(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(FaultRunError, subprocess.TimeoutExpired):
                self.crash()

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE prefarena")


class PrivateRedis:
    """A ``redis-server`` child without persistence: a restart starts it empty."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--daemonize", "no",
                   "--dir", str(self.base)]  # fmt: skip
        with (self.base / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        wait_until("Redis to answer PING", self.ping, timeout=30)

    def ping(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def kill_group(process: subprocess.Popen | None) -> None:
    """SIGKILL a server and everything it forked (a celery worker and its pool)."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


# --- the crowd ----------------------------------------------------------------------------


@dataclass
class Request:
    kind: str  # "pair" or "vote"
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    body: bytes = b""


@dataclass
class Crowd:
    """What the simulated annotators saw, kept for the checks after the run."""

    host: str
    port: int
    think: float
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[Request] = field(default_factory=list)
    acknowledged: dict[str, float] = field(default_factory=dict)  # token -> when (302)
    unanswered: set[str] = field(default_factory=set)  # a vote answered 503 or not at all
    confirmed_by_409: set[str] = field(default_factory=set)  # ... whose retry said "already"
    surprises: list[str] = field(default_factory=list)

    async def send(self, browser: Browser, kind: str, method: str, path: str,
                   body: bytes = b"") -> tuple[Request, bytes]:  # fmt: skip
        started = time.monotonic()
        try:
            status, content, _ = await asyncio.wait_for(
                browser.request(method, path, body), REQUEST_TIMEOUT
            )
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            status, content = 0, repr(exc).encode()
        request = Request(kind, started, time.monotonic(), status, content[:300])
        self.requests.append(request)
        return request, content

    async def pair(self, browser: Browser, path: str) -> bytes | None:
        """GET the arena until it serves a page; 503s (database down) are retried."""
        while not self.stopping.is_set():
            request, page = await self.send(browser, "pair", "GET", path)
            if request.status == 200:
                return page
            if request.status not in (0, 503):
                self.surprises.append(f"GET {path}: HTTP {request.status}")
            await asyncio.sleep(0.3)
        return None

    async def vote(self, browser: Browser, path: str, token: str, body: bytes) -> None:
        """POST a vote until the server answers it; a vote that got a 503 is sent again, as a
        person would, and a "you already voted" then confirms it was saved after all."""
        while not self.stopping.is_set():
            request, _ = await self.send(browser, "vote", "POST", path, body)
            if request.status == 302:
                self.acknowledged[token] = request.ended
                return
            if request.status in (0, 503):
                self.unanswered.add(token)
                await asyncio.sleep(0.3)
                continue
            if request.status == 409 and token in self.unanswered:
                self.confirmed_by_409.add(token)
                return
            self.surprises.append(f"POST {path}: HTTP {request.status}")
            return

    async def annotator(self, slug: str, seed: int) -> None:
        rng = random.Random(seed)
        browser = Browser(self.host, self.port)
        arena = f"/arena/{slug}/"
        page = await self.pair(browser, arena)
        while page is not None and not self.stopping.is_set():
            form = vote_form(page, rng.choice(CHOICES))
            if form is None:
                self.surprises.append("arena page without a pair")
                return
            token, body = form
            await asyncio.sleep(rng.uniform(0, 2 * self.think))
            await self.vote(browser, f"{arena}vote/", token, body)
            page = await self.pair(browser, f"{arena}?after={token}")


# --- the run ------------------------------------------------------------------------------


@dataclass
class Outage:
    name: str
    down: float  # monotonic: the fault happened
    up: float  # monotonic: the server is back (or the replacement started)
    recovered_after: float | None = None  # seconds from `up` to the first acknowledged vote
    worker_after: float | None = None  # seconds from `up` to a task done by the worker
    votes_during: int = 0


@dataclass
class Report:
    config: Config
    seconds: float = 0.0
    requests: int = 0
    acknowledged: int = 0
    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    unsent_rows: int = 0  # vote rows no client sent (must be 0)
    unanswered: int = 0
    unanswered_saved: int = 0
    confirmed_by_409: int = 0
    counter_mismatches: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors_500: int = 0
    unavailable_in_outage: int = 0  # 503 with the clear message while PostgreSQL was down
    unclear_503: int = 0  # 503 without the message
    stray_503: int = 0  # 503 outside the PostgreSQL outage
    no_answer: int = 0  # requests without an HTTP answer
    surprises: list[str] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    gunicorn_survived: bool = False
    worker_restarts: list[str] = field(default_factory=list)  # by the supervisor
    export: dict[str, Any] = field(default_factory=dict)
    elo_caught_up: bool = False

    @property
    def export_redone_once(self) -> bool:
        """One job, done, with the right rows in its one data file (and its card), run to
        the end by exactly one of the two deliveries of its task."""
        export = self.export
        return (
            export.get("status") == "done"
            and export.get("jobs") == 1
            and (export.get("rows") or 0) > 0
            and export.get("rows") == export.get("expected_rows") == export.get("file_lines")
            and export.get("files") == 2
            and export.get("received") == 2
            and export.get("succeeded") == 1
        )

    def problems(self) -> list[str]:
        """Every property the issue asks for that does not hold; empty when all hold."""
        checks = [
            (self.acknowledged > 0, "no vote was acknowledged"),
            (
                self.lost == self.duplicated == self.unsent_rows == 0,
                f"votes: {self.lost} lost, {self.duplicated} duplicated, "
                f"{self.unsent_rows} rows nobody sent",
            ),
            (self.counter_mismatches == 0, f"{self.counter_mismatches} wrong vote_count"),
            (self.errors_500 == 0, f"{self.errors_500} HTTP 500 answers"),
            (self.unavailable_in_outage > 0, "no clear 503 while PostgreSQL was down"),
            (
                self.unclear_503 == self.stray_503 == 0,
                f"503s: {self.unclear_503} without the message, {self.stray_503} stray",
            ),
            (self.no_answer == 0, f"{self.no_answer} requests got no HTTP answer"),
            (not self.surprises, f"unexpected answers: {sorted(set(self.surprises))[:5]}"),
            (self.gunicorn_survived, "gunicorn did not survive the run"),
            (
                self.export_redone_once,
                f"the interrupted export was not redone exactly once: {self.export}",
            ),
        ]
        for outage in self.outages:
            checks += [
                (
                    outage.recovered_after is not None,
                    f"no vote was acknowledged after the {outage.name} fault",
                ),
                (
                    outage.worker_after is not None,
                    f"the worker did no task after the {outage.name} fault",
                ),
            ]
        return [message for ok, message in checks if not ok]

    def render(self) -> str:
        c = self.config
        lines = [
            "",
            f"fault run: {c.annotators} annotators for {self.seconds:.0f} s, gunicorn with "
            f"{c.web_workers} sync workers, Redis visibility timeout {c.visibility_timeout} s",
            f"requests {self.requests}; HTTP statuses {dict(sorted(self.statuses.items()))}",
            f"votes acknowledged (302) {self.acknowledged}; their rows in the database "
            f"{self.acknowledged - self.lost} (lost {self.lost}, duplicated {self.duplicated})",
            f"vote rows in the project {self.rows}; rows no client sent {self.unsent_rows}; "
            f"comparisons with a wrong vote_count {self.counter_mismatches}",
            f"votes answered 503/not at all and sent again {self.unanswered}: saved once "
            f"{self.unanswered_saved} ({self.confirmed_by_409} confirmed by a 409 on retry)",
            f"HTTP 500: {self.errors_500}; no HTTP answer: {self.no_answer}; clear 503 during "
            f"the PostgreSQL outage: {self.unavailable_in_outage}; other 503: "
            f"{self.stray_503 + self.unclear_503}",
        ]
        for outage in self.outages:
            recovered = _seconds(outage.recovered_after)
            worker = _seconds(outage.worker_after)
            lines.append(
                f"  {outage.name:<10} down {outage.up - outage.down:4.1f} s; votes acknowledged "
                f"while down {outage.votes_during}; first vote after it {recovered}; "
                f"worker task done after it {worker}"
            )
        export = self.export
        lines.append(
            f"interrupted export job {export.get('job')}: {export.get('status')}, "
            f"{export.get('rows')} rows (expected {export.get('expected_rows')}, file "
            f"{export.get('file_lines')} lines, {export.get('files')} files); task received "
            f"{export.get('received')} times, succeeded {export.get('succeeded')} time(s); "
            f"done {_seconds(export.get('redone_after'))} after the kill"
        )
        lines.append(f"same gunicorn master throughout: {self.gunicorn_survived}")
        lines.append(
            f"worker exits the supervisor restarted: {len(self.worker_restarts)}"
            + "".join(f"\n  - {reason}" for reason in self.worker_restarts)
        )
        lines.append(f"live Elo caught up with every vote after the run: {self.elo_caught_up}")
        problems = self.problems()
        lines.append("RESULT: all properties hold" if not problems else "RESULT: FAILED")
        lines += [f"  - {problem}" for problem in problems]
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


class FaultRun:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = Path(tempfile.mkdtemp(prefix="prefarena-faults-"))
        try:
            self.postgres = PrivatePostgres(self.base)
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise
        self.redis = PrivateRedis(self.base)
        self.web_port = free_port()
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.workers_started = 0
        self.worker_lock = threading.Lock()  # the fault and the supervisor both (re)start it
        self.crowd = Crowd("127.0.0.1", self.web_port, config.think)
        self.report = Report(config)
        media = self.base / "media"
        media.mkdir()
        self.media = media
        self.env = {
            **env_for(self.postgres.url, f"{self.redis.url}/0"),
            "REDIS_CACHE_URL": f"{self.redis.url}/1",
            "CELERY_BROKER_VISIBILITY_TIMEOUT": str(config.visibility_timeout),
            "PREFARENA_MEDIA_ROOT": str(media),
            "PYTHONUNBUFFERED": "1",
        }

    # servers

    def log(self, message: str) -> None:
        print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise FaultRunError(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def sql(self, query: str, params: Any = None) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.postgres.url, connect_timeout=5, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def setup(self) -> None:
        self.log(f"private PostgreSQL on :{self.postgres.port}, Redis on :{self.redis.port}")
        self.postgres.init()
        self.postgres.start()
        self.postgres.create_database()
        self.redis.start()
        self.manage("migrate", "--verbosity", "0")
        self.manage("import_mtbench", str(DEMO), "--project", SLUG, "--votes-per-comparison", "200")
        # Rate limits and gold pairs off: the crowd votes as fast as the server lets it.
        self.sql(
            "UPDATE annotation_project SET max_votes_per_minute = 0, max_votes_per_day = 0,"
            " gold_rate = 0 WHERE slug = %s",
            [SLUG],
        )
        # Production settings serve hashed static files: collect them as production would.
        self.manage("collectstatic", "--noinput", "-v0")
        self.web = start(
            [sys.executable, "-m", "gunicorn", "prefarena.wsgi:application", "--bind",
             f"127.0.0.1:{self.web_port}", "--workers", str(self.config.web_workers),
             "--timeout", "60", "--preload", "--no-control-socket"],
            self.env,
            self.base / "gunicorn.log",
        )  # fmt: skip
        self.start_worker()
        wait_until("gunicorn to serve the arena", self._arena_serves, timeout=60, interval=0.5)

    def _arena_serves(self) -> bool:
        async def probe() -> int:
            status, _, _ = await Browser("127.0.0.1", self.web_port).request(
                "GET", f"/arena/{SLUG}/"
            )
            return status

        status = asyncio.run(probe())
        if status not in (200, 0):
            raise FaultRunError(f"the arena answers HTTP {status}; see {self.base}/gunicorn.log")
        return status == 200

    def start_worker(self) -> None:
        self.workers_started += 1
        number = self.workers_started
        self.worker = start(
            [sys.executable, "-m", "celery", "-A", "prefarena", "worker", "-Q", "default",
             "--concurrency", "2", "-l", "info", "-n", f"faults{number}@%h"],
            self.env,
            self.base / f"worker{number}.log",
        )  # fmt: skip

    def worker_logs(self) -> str:
        return "".join(
            (self.base / f"worker{n}.log").read_text(errors="replace")
            for n in range(1, self.workers_started + 1)
        )

    def cleanup(self) -> None:
        if self.web is not None and self.web.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                stop(self.web)
        kill_group(self.web)
        kill_group(self.worker)
        self.redis.kill()
        self.postgres.stop()
        if self.config.keep:
            self.log(f"kept {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    # the faults

    def db_now(self) -> Any:
        return self.sql("SELECT now()")[0][0]

    def elo_updated_since(self, since: Any) -> bool:
        rows = self.sql(
            "SELECT max(e.updated_at) FROM annotation_elorating e"
            " JOIN annotation_project p ON p.id = e.project_id WHERE p.slug = %s",
            [SLUG],
        )
        return rows[0][0] is not None and rows[0][0] > since

    def worker_recovery(self, outage: Outage, timeout: float = 60) -> None:
        """Seconds from the repair until the worker has refreshed the live Elo table again."""
        marker = self.db_now()
        with contextlib.suppress(FaultRunError):
            waited = wait_until(
                f"the worker to refresh the Elo table after the {outage.name} fault",
                lambda: self.elo_updated_since(marker),
                timeout=timeout,
                interval=0.3,
            )
            outage.worker_after = time.monotonic() - outage.up
            self.log(f"worker busy again {waited:.1f} s after the {outage.name} repair")

    def fault_worker(self) -> Outage:
        """Hold an export in the middle of its run, kill the worker, let a new one redo it."""
        import psycopg

        self.log("fault 1: SIGKILL the celery worker in the middle of an export job")
        lock = psycopg.connect(self.postgres.url, connect_timeout=5)
        try:
            # The export reads judge verdicts per chunk; while this lock is held its first
            # chunk waits, after the job was claimed and its file opened. Voting never reads
            # that table, so the crowd goes on.
            lock.execute("LOCK TABLE models_backend_judgment IN ACCESS EXCLUSIVE MODE")
            code = (
                "from django.utils import timezone\n"
                "from annotation.exports.options import ExportOptions\n"
                "from annotation.exports.service import export_job_create\n"
                "from annotation.models import Project\n"
                "until = timezone.now()\n"
                f"project = Project.objects.get(slug={SLUG!r})\n"
                "options = ExportOptions(format='votes', source='final', until=until)\n"
                "job = export_job_create(project=project, options=options, file_type='jsonl')\n"
                "print('JOB', job.pk, until.isoformat())\n"
            )
            printed = self.manage("shell", "-c", code).split()
            job, until = printed[printed.index("JOB") + 1 :][:2]
            self.report.export.update(job=int(job), until=until)

            def held() -> bool:
                running = self.sql(
                    "SELECT status FROM annotation_exportjob WHERE id = %s", [int(job)]
                )[0][0]
                waiting = self.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE %s",
                    ["%models_backend_judgment%"],
                )[0][0]
                return running == "running" and waiting > 0

            wait_until("the export job to run and wait on the lock", held, timeout=60)
            down = time.monotonic()
            with self.worker_lock:
                kill_group(self.worker)
                self.start_worker()
            up = time.monotonic()
        finally:
            lock.rollback()  # the killed worker's query gets the table, then a dead client
            lock.close()
        outage = Outage("worker", down, up)
        wait_until(
            "the interrupted export job to be redone",
            lambda: (
                self.sql("SELECT status FROM annotation_exportjob WHERE id = %s", [int(job)])[0][0]
                in ("done", "failed")
            ),
            timeout=self.config.visibility_timeout + 90,
            interval=0.3,
        )
        self.report.export["redone_after"] = time.monotonic() - down
        outage.worker_after = time.monotonic() - up
        return outage

    def fault_redis(self) -> Outage:
        self.log("fault 2: kill Redis (broker and cache), start it again empty")
        down = time.monotonic()
        self.redis.kill()
        time.sleep(self.config.redis_down)
        self.redis.start()
        outage = Outage("redis", down, time.monotonic())
        self.worker_recovery(outage)
        return outage

    def fault_postgres(self) -> Outage:
        self.log("fault 3: crash PostgreSQL (pg_ctl stop -m immediate), start it again")
        down = time.monotonic()
        self.postgres.crash()
        time.sleep(self.config.postgres_down)
        self.postgres.start()
        outage = Outage("postgresql", down, time.monotonic())
        self.worker_recovery(outage)
        return outage

    async def faults(self) -> None:
        c = self.config
        try:
            await asyncio.sleep(c.warmup)
            # The export of the first fault must have votes to write.
            await asyncio.to_thread(
                wait_until,
                "the crowd to cast its first votes",
                lambda: len(self.crowd.acknowledged) >= max(10, c.annotators),
                120,
            )
            for fault in (self.fault_worker, self.fault_redis, self.fault_postgres):
                outage = await asyncio.to_thread(fault)
                self.report.outages.append(outage)
                # Votes must flow again without anyone touching gunicorn.
                await asyncio.to_thread(
                    wait_until,
                    f"a vote to be acknowledged after the {outage.name} fault",
                    lambda o=outage: any(t > o.up for t in self.crowd.acknowledged.values()),
                    60,
                )
                await asyncio.sleep(c.settle)
        finally:
            self.crowd.stopping.set()

    def supervise(self) -> None:
        """Start the worker again when it exited by itself, as its process supervisor does in
        production (docker compose ``restart: unless-stopped``); the reason is reported."""
        with self.worker_lock:
            if self.worker is None or self.worker.poll() is None:
                return
            log = (self.base / f"worker{self.workers_started}.log").read_text(errors="replace")
            reasons = re.findall(r"CRITICAL/MainProcess\] (.+)", log) or re.findall(
                r"ERROR/MainProcess\] (.+)", log
            )
            reason = reasons[-1] if reasons else f"exit status {self.worker.returncode}"
            self.report.worker_restarts.append(reason[:200])
            self.log(f"the worker exited by itself ({reason[:120]}); starting it again")
            self.start_worker()

    async def supervisor(self) -> None:
        while not self.crowd.stopping.is_set():
            self.supervise()
            await asyncio.sleep(0.5)

    async def load(self) -> None:
        clients = [self.crowd.annotator(SLUG, seed) for seed in range(self.config.annotators)]
        await asyncio.gather(self.faults(), self.supervisor(), *clients)

    # the checks

    def check(self, seconds: float) -> None:
        report, crowd = self.report, self.crowd
        report.seconds = seconds
        report.requests = len(crowd.requests)
        report.surprises = list(crowd.surprises)
        for request in crowd.requests:
            report.statuses[request.status] = report.statuses.get(request.status, 0) + 1
        report.errors_500 = sum(1 for r in crowd.requests if r.status >= 500 and r.status != 503)
        report.no_answer = report.statuses.get(0, 0)
        pg = next(o for o in report.outages if o.name == "postgresql")
        for request in crowd.requests:
            if request.status != 503:
                continue
            # A request that overlapped the outage (or the seconds after, while the
            # reconnect happens) may see the database down.
            in_outage = request.ended >= pg.down and request.started <= pg.up + 10
            if UNAVAILABLE not in request.body:
                report.unclear_503 += 1
            elif in_outage:
                report.unavailable_in_outage += 1
            else:
                report.stray_503 += 1
        for outage in report.outages:
            after = [t - outage.up for t in crowd.acknowledged.values() if t > outage.up]
            outage.recovered_after = min(after) if after else None
            outage.votes_during = sum(
                1 for t in crowd.acknowledged.values() if outage.down <= t <= outage.up
            )
        acknowledged = list(crowd.acknowledged)
        sent = acknowledged + sorted(crowd.unanswered - crowd.acknowledged.keys())
        rows = dict(
            self.sql(
                "SELECT a.token::text, count(v.id) FROM annotation_assignment a"
                " LEFT JOIN annotation_vote v ON v.assignment_id = a.id"
                " WHERE a.token = ANY(%s::uuid[]) GROUP BY a.token",
                [sent],
            )
        )
        report.acknowledged = len(acknowledged)
        report.lost = sum(1 for token in acknowledged if rows.get(token, 0) == 0)
        report.duplicated = sum(1 for count in rows.values() if count > 1)
        report.duplicated += self.sql(
            "SELECT count(*) FROM (SELECT 1 FROM annotation_vote v"
            " JOIN annotation_comparison c ON c.id = v.comparison_id"
            " JOIN annotation_project p ON p.id = c.project_id WHERE p.slug = %s"
            " GROUP BY v.annotator_id, v.comparison_id HAVING count(*) > 1) d",
            [SLUG],
        )[0][0]
        unanswered = crowd.unanswered - crowd.acknowledged.keys()
        report.unanswered = len(crowd.unanswered)
        report.unanswered_saved = sum(1 for token in unanswered if rows.get(token, 0) == 1)
        report.confirmed_by_409 = len(crowd.confirmed_by_409)
        report.rows = self.sql(
            "SELECT count(*) FROM annotation_vote v JOIN annotation_comparison c"
            " ON c.id = v.comparison_id JOIN annotation_project p ON p.id = c.project_id"
            " WHERE p.slug = %s",
            [SLUG],
        )[0][0]
        report.unsent_rows = report.rows - sum(rows.values())
        report.counter_mismatches = self.sql(
            "SELECT count(*) FROM annotation_comparison c JOIN annotation_project p"
            " ON p.id = c.project_id WHERE p.slug = %s AND c.vote_count <>"
            " (SELECT count(*) FROM annotation_vote v WHERE v.comparison_id = c.id)",
            [SLUG],
        )[0][0]
        report.gunicorn_survived = self.web is not None and self.web.poll() is None
        self.check_export()
        with contextlib.suppress(FaultRunError):
            wait_until("the live Elo table to count every vote", self.elo_complete, timeout=20)
            report.elo_caught_up = True

    def elo_complete(self) -> bool:
        counted = self.sql(
            "SELECT coalesce(sum(e.votes), 0) FROM annotation_elorating e"
            " JOIN annotation_project p ON p.id = e.project_id WHERE p.slug = %s",
            [SLUG],
        )[0][0]
        return counted == 2 * self.report.rows

    def check_export(self) -> None:
        export = self.report.export
        job = export["job"]
        status, rows, download = self.sql(
            "SELECT status, rows, download_path FROM annotation_exportjob WHERE id = %s", [job]
        )[0]
        export.update(status=status, rows=rows)
        export["jobs"] = self.sql(
            "SELECT count(*) FROM annotation_exportjob j JOIN annotation_project p"
            " ON p.id = j.project_id WHERE p.slug = %s",
            [SLUG],
        )[0][0]
        # The export takes the votes of active annotators cast before `until` (no judgments).
        export["expected_rows"] = self.sql(
            "SELECT count(*) FROM annotation_vote v JOIN annotation_comparison c"
            " ON c.id = v.comparison_id JOIN annotation_project p ON p.id = c.project_id"
            " JOIN annotation_annotator a ON a.id = v.annotator_id"
            " WHERE p.slug = %s AND NOT c.is_gold AND a.state = 'active'"
            " AND v.created_at < %s::timestamptz",
            [SLUG, export["until"]],
        )[0][0]
        folder = self.media / "exports" / str(job)
        export["files"] = sum(1 for path in folder.rglob("*") if path.is_file())
        data = self.media / download if download else None
        export["file_lines"] = (
            sum(1 for _ in data.open("rb")) if data is not None and data.is_file() else None
        )
        logs = self.worker_logs()
        name = re.escape("annotation.tasks.export_run_task")
        export["received"] = len(re.findall(rf"Task {name}\[[^\]]+\] received", logs))
        export["succeeded"] = len(re.findall(rf"Task {name}\[[^\]]+\] succeeded", logs))

    def run(self) -> Report:
        try:
            self.setup()
            self.log(f"load: {self.config.annotators} annotators")
            started = time.monotonic()
            asyncio.run(self.load())
            self.check(time.monotonic() - started)
        finally:
            self.cleanup()
        return self.report


def run(config: Config) -> Report:
    """Set up the private stack, run the load with the three faults, check, clean up."""
    return FaultRun(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Config()
    parser.add_argument("--annotators", type=int, default=defaults.annotators)
    parser.add_argument("--web-workers", type=int, default=defaults.web_workers)
    parser.add_argument("--postgres-down", type=float, default=defaults.postgres_down)
    parser.add_argument("--redis-down", type=float, default=defaults.redis_down)
    parser.add_argument("--visibility-timeout", type=int, default=defaults.visibility_timeout)
    parser.add_argument("--keep", action="store_true", help="keep the logs and data folder")
    args = parser.parse_args()
    report = run(
        Config(
            annotators=args.annotators,
            web_workers=args.web_workers,
            postgres_down=args.postgres_down,
            redis_down=args.redis_down,
            visibility_timeout=args.visibility_timeout,
            keep=args.keep,
        )
    )
    print(report.render())
    sys.exit(1 if report.problems() else 0)


if __name__ == "__main__":
    main()
