"""Generation and judging jobs: create them, and run them inside a `gpu` worker.

A job row carries the live progress. Running a job is idempotent: what already exists
(candidates per prompt, model and settings; judgments per comparison and judge) is skipped,
and each batch is written in one transaction together with its progress, so a worker killed
mid-task leaves no half-written rows and the redelivered task finishes the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Case, F, Q, When
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from annotation.models import Candidate, Comparison, ModelEntry, Project, Prompt
from annotation.services import comparisons_create_for_prompts
from models_backend import backends
from models_backend.errors import BackendResponseError
from models_backend.models import GenerationJob, Job, JudgeJob, Judgment
from prefarena import jsontext
from prefarena.celery import enqueue_job_on_commit

DEFAULT_JUDGE = "gemma3-270m-judge"
ProgressFn = Callable[[int, int], None]
JobT = TypeVar("JobT", GenerationJob, JudgeJob)
UNFINISHED = (Job.Status.QUEUED, Job.Status.RUNNING)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


class JobBusy(Exception):
    """Another worker runs the job and was heard from within JOB_STALE_SECONDS."""


def _lost() -> Q:
    """Running jobs whose worker has been silent for JOB_STALE_SECONDS (see `Job.last_seen`)."""
    cutoff = timezone.now() - timedelta(seconds=django_settings.JOB_STALE_SECONDS)
    silent = (
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__isnull=True, created_at__lt=cutoff)
    )
    return Q(status=Job.Status.RUNNING) & silent


def _claim(job_class: type[JobT], pk: int) -> JobT | None:
    """Mark a queued job, or one whose worker died mid-run, as running; None if finished.

    JobBusy while another worker is on it: a task delivered twice (a broker's redelivery, beat
    requeueing a job it thought lost) never runs beside the live one."""
    jobs = job_class.objects.filter(pk=pk)
    limit, lost = django_settings.JOB_MAX_WORKERS_LOST, _lost()
    if jobs.filter(lost, workers_lost__gte=limit - 1).update(
        status=Job.Status.FAILED,
        error=(
            f"Its worker stopped {limit} times while running it (killed, or out of memory?). "
            "What it wrote stays; start it again, perhaps with a smaller batch."
        ),
        finished_at=Now(),
    ):
        return None
    claimed = jobs.filter(Q(status=Job.Status.QUEUED) | lost).update(
        # SET reads the row as it was: a job taken over from a dead worker counts one more loss.
        workers_lost=F("workers_lost") + Case(When(status=Job.Status.RUNNING, then=1), default=0),
        status=Job.Status.RUNNING,
        started_at=Coalesce(F("started_at"), Now()),
        heartbeat_at=Now(),
        attempts=F("attempts") + 1,
    )
    if claimed:
        return jobs.get()
    if jobs.filter(status=Job.Status.RUNNING).exists():
        raise JobBusy(f"{job_class.__name__} {pk} is running on another worker")
    return None


def job_release(*, job_class: type[Job], pk: int) -> None:
    """Give a running job back to the queue, for a retry of its task (any worker may claim it)."""
    job_class.objects.filter(pk=pk, status=Job.Status.RUNNING).update(
        status=Job.Status.QUEUED, heartbeat_at=None
    )


def job_heartbeat(*, job_class: type[Job], pk: int) -> None:
    """The running worker's sign of life (see `Job.worker_silent`)."""
    job_class.objects.filter(pk=pk, status=Job.Status.RUNNING).update(heartbeat_at=Now())


def jobs_requeue_lost() -> list[Job]:
    """Queue again every running job whose worker has gone silent, once per silence: a worker
    killed whole (the host, the container, the OOM killer) leaves its task unacknowledged on
    the broker until the visibility timeout, an hour; this takes minutes."""
    requeued: list[Job] = []
    for job_class in (GenerationJob, JudgeJob):
        since_seen = Q(requeued_at__isnull=True) | Q(
            requeued_at__lt=Coalesce(F("heartbeat_at"), F("started_at"), F("created_at"))
        )
        for job in job_class.objects.filter(_lost(), since_seen):
            if job_class.objects.filter(pk=job.pk, requeued_at=job.requeued_at).update(
                requeued_at=Now()
            ):
                enqueue_job_on_commit(_task_for(job), job)
                requeued.append(job)
    return requeued


def jobs_resend_queued(**_: Any) -> list[Job]:
    """Send every queued job's task again (the broker lost its messages: `queued_jobs_lost`).
    A job delivered twice runs once: the second delivery finds it running or done."""
    resent: list[Job] = []
    for job_class in (GenerationJob, JudgeJob):
        for job in job_class.objects.filter(status=Job.Status.QUEUED):
            enqueue_job_on_commit(_task_for(job), job)
            resent.append(job)
    return resent


def job_fail(*, job_class: type[Job], pk: int, error: str) -> None:
    """Record a visible error on the job; its written batches stay, nothing half-written."""
    job_class.objects.filter(pk=pk, status__in=UNFINISHED).update(
        status=Job.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def job_cancel(*, job: Job, by: str) -> bool:
    """Stop a queued or running job: a running one stops after the batch it is on (what it
    wrote stays), a queued one never starts. False when it had already ended.

    This is also how to clear a job left "running" by a worker that is gone, which otherwise
    keeps the router from queueing its judge."""
    return bool(
        type(job)
        .objects.filter(pk=job.pk, status__in=UNFINISHED)
        .update(status=Job.Status.CANCELLED, error=f"Cancelled by {by}.", finished_at=Now())
    )


PAUSED = "paused"


def _pause_due(job: Job, until: float | None, *, batches_done: int) -> bool:
    """Past the task's time (`until`, a `time.monotonic()`), after at least one batch: the job
    goes back to the queue, for the task's next run to go on with. A long job never meets
    the worker's time limit, and other jobs get their turn."""
    if until is None or not batches_done or time.monotonic() < until:
        return False
    job_release(job_class=type(job), pk=job.pk)
    return True


def _cancelled(job: Job) -> bool:
    return type(job).objects.filter(pk=job.pk, status=Job.Status.CANCELLED).exists()


def _job_save(job: JobT, *, dispatch: bool) -> JobT:
    """Validate and store a new job; with `dispatch`, queue its gpu task after commit."""
    job.full_clean()
    job.save()
    if dispatch:
        enqueue_job_on_commit(_task_for(job), job)
    return job


def _task_for(job: Job) -> Any:
    from models_backend import tasks  # noqa: PLC0415 - tasks import this module

    return tasks.generation_job_task if isinstance(job, GenerationJob) else tasks.judge_job_task


def _finish(job: Job, *, error: str = "") -> None:
    """Done; `error` says what it could not do (prompts that got no answer)."""
    type(job).objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=Job.Status.DONE, finished_at=timezone.now(), error=error[:2000]
    )


# --- generation -------------------------------------------------------------------------


@transaction.atomic
def generation_job_create(
    *,
    model: ModelEntry,
    prompts: Sequence[Prompt] | None = None,
    batch_size: int = 16,
    dispatch: bool = True,
) -> GenerationJob:
    """Queue the generation of `model`'s answers to `prompts` (default: all the project's).

    With `dispatch=False` the job is only recorded, for a caller that runs it itself."""
    settings = backends.generation_settings(model)
    if model.backend == ModelEntry.Backend.IMPORTED:
        raise backends.BackendConfigurationError(
            f"{model.name} has imported outputs only; it cannot generate"
        )
    backends.check_config(model)  # before a job exists: what needs no model or server
    chosen = list(prompts) if prompts is not None else list(model.project.prompts.order_by("id"))
    job = GenerationJob(
        project=model.project,
        model=model,
        prompt_ids=[prompt.pk for prompt in chosen],
        settings_hash=settings.settings_hash(),
        total=len(chosen),
        batch_size=batch_size,
    )
    return _job_save(job, dispatch=dispatch)


def generation_job_run(
    *, job_pk: int, progress: ProgressFn | None = None, until: float | None = None
) -> str:
    """Generate the missing candidates of a job, batch by batch. Safe to run more than once.

    A prompt the backend cannot answer (too long for its context, a blank answer) is listed in
    the job's `failures` and the others go on; a later job tries it again."""
    job = _claim(GenerationJob, job_pk)
    if job is None:
        return "already finished"
    model = job.model
    settings = backends.generation_settings(model)
    order = {pk: i for i, pk in enumerate(job.prompt_ids)}
    prompts = sorted(Prompt.objects.filter(pk__in=job.prompt_ids), key=lambda p: order[p.pk])
    done = set(
        Candidate.objects.filter(
            model=model, settings_hash=job.settings_hash, prompt_id__in=job.prompt_ids
        ).values_list("prompt_id", flat=True)
    )
    GenerationJob.objects.filter(pk=job.pk).update(completed=len(done), failures={})
    completed, answered_here = len(done), 0
    failures: dict[str, str | None] = {}
    for n, batch in enumerate(_chunks([p for p in prompts if p.pk not in done], job.batch_size)):
        if _cancelled(job):
            return f"cancelled after {completed} of {job.total}"
        if _pause_due(job, until, batches_done=n):
            return f"{PAUSED} after {completed} of {job.total}"
        answers = _answer_conversations(model, batch, settings, job.batch_size)
        answered = [(p, a) for p, a in zip(batch, answers, strict=True) if a[-1].text is not None]
        failures |= {
            p.external_id: a[-1].error
            for p, a in zip(batch, answers, strict=True)
            if a[-1].text is None
        }
        answered_here += len(answered)
        with transaction.atomic():
            Candidate.objects.bulk_create(
                [
                    Candidate(
                        prompt=prompt,
                        model=model,
                        responses=[a.text for a in turns],
                        settings_hash=job.settings_hash,
                        metadata={
                            "generation": settings.to_dict(),
                            "job": job.pk,
                            "turns": [a.metadata() for a in turns],
                        },
                    )
                    for prompt, turns in answered
                ],
                ignore_conflicts=True,
            )
            # With the candidates, their comparisons: a job that fails at a later batch leaves
            # what it generated in the arena, not candidates nobody is shown.
            comparisons_create_for_prompts(project=job.project, prompts=[p for p, _ in answered])
            completed += len(batch)
            GenerationJob.objects.filter(pk=job.pk).update(
                completed=completed, failures=_capped(failures)
            )
        if progress is not None:
            progress(completed, job.total)
        if not (answered_here or done) and len(failures) >= FAIL_FAST_AFTER:
            # The model, not a prompt, is the problem: no use asking it the rest.
            raise BackendResponseError(_failures_summary(failures, job.total))
    if failures and not (answered_here or done):
        raise BackendResponseError(_failures_summary(failures, job.total))
    # Also pairs candidates of an earlier run that failed before this change of order.
    comparisons_create_for_prompts(project=job.project, prompts=prompts)
    _finish(job, error=_failures_summary(failures, job.total))
    failed = f", {len(failures)} got no answer" if failures else ""
    return f"generated {answered_here} candidates{failed}"


# A job whose first this many prompts all got no answer (and the model none before) fails.
FAIL_FAST_AFTER = 5


# A job lists at most this many failed prompts (the count in its summary is exact).
MAX_LISTED_FAILURES = 200


def _capped(failures: dict[str, str | None]) -> dict[str, str | None]:
    return dict(list(failures.items())[:MAX_LISTED_FAILURES])


def _failures_summary(failures: dict[str, str | None], total: int) -> str:
    if not failures:
        return ""
    first, why = next(iter(failures.items()))
    return f"{len(failures)} of {total} prompts got no answer (the first, {first}: {why})"


def _answer_conversations(
    model: ModelEntry, prompts: Sequence[Prompt], settings: Any, batch_size: int
) -> list[list[backends.Answer]]:
    """Answer every turn of each prompt; a later turn sees the model's own earlier answers.
    A prompt whose turn got no answer stops there: its last `Answer` says why."""
    answers: list[list[backends.Answer]] = [[] for _ in prompts]
    for turn in range(max(len(p.turns) for p in prompts)):
        active = [
            i
            for i, p in enumerate(prompts)
            if turn < len(p.turns) and all(a.text is not None for a in answers[i])
        ]
        if not active:
            break
        conversations = []
        for i in active:
            messages: list[dict[str, str]] = []
            for earlier in range(turn):
                messages.append({"role": "user", "content": prompts[i].turns[earlier]})
                messages.append({"role": "assistant", "content": answers[i][earlier].text})
            messages.append({"role": "user", "content": prompts[i].turns[turn]})
            conversations.append(messages)
        turn_answers = backends.generate_answers(
            model, conversations, settings, batch_size=batch_size
        )
        for i, answer in zip(active, turn_answers, strict=True):
            answers[i].append(answer)
    return answers


# --- judging ----------------------------------------------------------------------------


@transaction.atomic
def judge_job_create(
    *,
    project: Project,
    comparisons: Sequence[Comparison] | None = None,
    judge: str = DEFAULT_JUDGE,
    judge_spec: dict[str, Any] | None = None,
    batch_size: int = 8,
    dispatch: bool = True,
) -> JudgeJob:
    """Queue judging of `comparisons` (default: the project's routed to the judge or to both,
    or waiting for the router, which reads the verdict; not yet judged by this judge)."""
    if comparisons is None:
        judged = Judgment.objects.filter(judge=judge).values("comparison_id")
        # The pairs the router waits on first: it can route nothing before their verdicts.
        waiting = Case(When(route=Comparison.Route.PENDING, then=0), default=1)
        comparisons = list(
            Comparison.objects.for_project(project)
            .for_judge()
            .exclude(pk__in=judged)
            .order_by(waiting, "id")
        )
    # Refused now, not when a worker loads it (only what needs no worker's files: a path
    # may exist on the gpu worker alone).
    backends.refuse_server_source(judge_spec or {})
    job = JudgeJob(
        project=project,
        judge=judge,
        judge_spec=judge_spec or {},
        comparison_ids=[c.pk for c in comparisons],
        total=len(comparisons),
        batch_size=batch_size,
    )
    return _job_save(job, dispatch=dispatch)


def judge_pair_for(comparison: Comparison) -> Any:
    """The judge's view of a comparison: last user turn, both answers, and for multi-turn
    prompts each side's whole transcript."""
    from models_backend.judge import JudgePair  # noqa: PLC0415 - loads torch

    prompt = comparison.prompt
    conversations = []
    for candidate in (comparison.candidate_a, comparison.candidate_b):
        messages: list[dict[str, str]] = []
        for turn, question in enumerate(prompt.turns):
            messages.append({"role": "user", "content": question})
            if turn < len(candidate.responses):
                messages.append({"role": "assistant", "content": candidate.responses[turn]})
        conversations.append(messages)
    multi_turn = len(prompt.turns) > 1
    return JudgePair(
        prompt=prompt.text,
        response_a=comparison.candidate_a.text,
        response_b=comparison.candidate_b.text,
        reference_answer=prompt.reference_answer or None,
        conversation_a=conversations[0] if multi_turn else None,
        conversation_b=conversations[1] if multi_turn else None,
    )


VERDICTS = {
    "a": Judgment.Verdict.MODEL_A,
    "b": Judgment.Verdict.MODEL_B,
    "tie": Judgment.Verdict.TIE,
}


def judge_job_run(
    *, job_pk: int, progress: ProgressFn | None = None, until: float | None = None
) -> str:
    """Judge the job's comparisons not yet judged by its judge. Safe to run more than once."""
    from models_backend.judge import JudgeConfig, judge_pairs  # noqa: PLC0415 - loads torch
    from models_backend.loaders import get_model  # noqa: PLC0415

    job = _claim(JudgeJob, job_pk)
    if job is None:
        return "already finished"
    judged = set(
        Judgment.objects.filter(judge=job.judge, comparison_id__in=job.comparison_ids).values_list(
            "comparison_id", flat=True
        )
    )
    todo = list(
        Comparison.objects.filter(pk__in=set(job.comparison_ids) - judged)
        .select_related("prompt", "candidate_a", "candidate_b")
        .order_by("id")
    )
    completed = len(judged)
    JudgeJob.objects.filter(pk=job.pk).update(completed=completed)
    loaded = get_model(backends.model_spec(job.judge_spec)) if todo else None
    config = JudgeConfig(batch_size=job.batch_size)
    for n, batch in enumerate(_chunks(todo, job.batch_size)):
        if _cancelled(job):
            return f"cancelled after {completed} of {job.total}"
        if _pause_due(job, until, batches_done=n):
            return f"{PAUSED} after {completed} of {job.total}"
        verdicts = judge_pairs(loaded, [judge_pair_for(c) for c in batch], config)
        with transaction.atomic():
            Judgment.objects.bulk_create(
                [_judgment_row(job.judge, c, v) for c, v in zip(batch, verdicts, strict=True)],
                ignore_conflicts=True,
            )
            completed += len(batch)
            JudgeJob.objects.filter(pk=job.pk).update(completed=completed)
        if progress is not None:
            progress(completed, job.total)
    _finish(job)
    return f"judged {len(todo)} comparisons"


def _judgment_row(judge: str, comparison: Comparison, verdict: Any) -> Judgment:
    orders = {
        ("swapped" if order.swapped else "as_given"): {
            "p_a": order.p_a,
            "p_b": order.p_b,
            "p_tie": order.p_tie,
            "label_mass": order.label_mass,
        }
        for order in verdict.orders
    }
    return Judgment(
        comparison=comparison,
        judge=judge,
        verdict=VERDICTS[verdict.verdict],
        p_a=verdict.p_a,
        p_b=verdict.p_b,
        p_tie=verdict.p_tie,
        per_order=orders,
        consistent=verdict.consistent,
        rationale=jsontext.storable_text(verdict.rationale or ""),
        latency_ms=int(verdict.latency_s * 1000),
    )
