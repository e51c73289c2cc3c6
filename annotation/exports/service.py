"""An export end to end: labels -> records -> file + dataset card, with progress; and the
export jobs that run large exports on a Celery worker."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from annotation.exports import formats, writers
from annotation.exports.card import ExportStats, dataset_card
from annotation.exports.options import (
    FILE_TYPES,
    ExportOptions,
    ExportRequestInvalid,
    parse_options,
)
from annotation.exports.source import count_comparisons, stream_pairs
from annotation.models import DataCredit, ExportJob, ModelEntry, Project, Prompt
from prefarena.celery import enqueue_job_on_commit

Progress = Callable[[int, int], None]  # (comparisons walked, comparisons in all)


def export_options(project: Project, data: Mapping[str, Any]) -> ExportOptions:
    """`parse_options` for this arena: a category or model it does not have is an error (a
    typo would otherwise export an empty dataset without a word)."""
    options = parse_options(data)
    if len(options.models) == 1:
        raise ExportRequestInvalid(
            "models: list two or more; a comparison is exported when both its models are listed"
        )
    known = (
        ("categories", options.categories, Prompt.objects.filter(project=project), "category"),
        ("models", options.models, ModelEntry.objects.filter(project=project), "name"),
    )
    for name, asked, rows, column in known:
        if not asked:
            continue
        found = set(rows.filter(**{f"{column}__in": asked}).values_list(column, flat=True))
        unknown = sorted(set(asked) - found)
        if unknown:
            listed = ", ".join(repr(value) for value in unknown[:5])
            raise ExportRequestInvalid(f"{name}: this arena has no {listed}")
    return options


def export_records(
    project: Project,
    options: ExportOptions,
    stats: ExportStats,
    progress: Progress | None = None,
) -> Iterator[dict[str, Any]]:
    """The export's records, streamed; ``stats`` fills in as they go."""
    total = count_comparisons(project, options) if progress else 0
    walked = 0

    def on_chunk(n: int) -> None:
        nonlocal walked
        walked += n
        if progress:
            progress(walked, total)

    for pair in stream_pairs(project, options, on_chunk=on_chunk, left_out=stats.skipped):
        stats.add_pair(pair)
        for record in formats.records(pair, options, stats.skipped):
            stats.add_record(record)
            yield record


def file_type_for(out: Path, file_type: str | None = None) -> str:
    """jsonl / parquet from the file name, hf for a folder; or as given."""
    if file_type:
        if file_type not in FILE_TYPES:
            raise ExportRequestInvalid(
                f"file type must be one of {', '.join(FILE_TYPES)}, not {file_type!r}"
            )
        return file_type
    suffix = out.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    if suffix:
        raise ExportRequestInvalid(f"{out}: write .jsonl, .parquet, or a folder (datasets)")
    return "hf"


def project_licenses(project: Project) -> list[str]:
    """The prompts' sources and licences, as their imports recorded them."""
    return sorted(
        set(
            Prompt.objects.filter(project=project)
            .exclude(source="")
            .values_list("source", flat=True)
        )
    )


def project_credits(project: Project) -> dict[str, list[str]]:
    """The imported labels' sources and licences by kind ("votes", "judgments")."""
    credits: dict[str, list[str]] = {}
    for kind, text in DataCredit.objects.filter(project=project).values_list("kind", "text"):
        credits.setdefault(kind, []).append(text)
    return credits


@dataclass(frozen=True)
class ExportResult:
    data: Path
    card: Path
    file_type: str
    stats: ExportStats


def export_to_path(
    project: Project,
    options: ExportOptions,
    out: Path,
    *,
    file_type: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the export to ``out`` (a .jsonl or .parquet file, or a datasets folder) and its
    card: ``README.md`` inside the folder, or ``<file name>.README.md`` beside the file (say
    ``d.jsonl.README.md``: a .jsonl and a .parquet export of one name keep a card each)."""
    kind = file_type_for(out, file_type)
    try:
        if kind == "hf":
            writers.check_hf_folder(out)
        elif out.is_dir():
            raise writers.OutputInUse(f"{out} is a folder; name a file to write")
    except writers.OutputInUse as exc:
        raise ExportRequestInvalid(str(exc)) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = ExportStats()
    records = export_records(project, options, stats, progress)
    if kind == "jsonl":
        with out.open("wb") as handle:
            writers.write_jsonl(records, handle)
        card = out.with_name(f"{out.name}.README.md")
    elif kind == "parquet":
        writers.write_parquet(records, out, options.format)
        card = out.with_name(f"{out.name}.README.md")
    else:
        writers.write_hf_dataset(records, out, options.format)
        card = out / "README.md"
    card.write_text(
        dataset_card(
            project_title=project.title,
            project_slug=project.slug,
            options=options,
            file_type=kind,
            stats=stats,
            licenses=project_licenses(project),
            credits=project_credits(project),
        ),
        encoding="utf-8",
    )
    return ExportResult(data=out, card=card, file_type=kind, stats=stats)


# --- jobs ---------------------------------------------------------------------------------


def export_job_create(
    *, project: Project, options: ExportOptions, file_type: str, requested_by: Any = None
) -> ExportJob:
    """Queue an export; the worker writes it under MEDIA_ROOT/exports/<job id>/."""
    file_type_for(Path("x"), file_type)
    job = ExportJob.objects.create(
        project=project,
        options=options.to_json(),
        file_type=file_type,
        requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
        total=count_comparisons(project, options),
    )
    from annotation.tasks import export_run_task  # noqa: PLC0415 - tasks import services

    enqueue_job_on_commit(export_run_task, job)
    return job


def export_jobs_resend_queued(**_: Any) -> list[ExportJob]:
    """Send every queued export's task again (the broker lost its messages:
    `prefarena.celery.queued_jobs_lost`)."""
    from annotation.tasks import export_run_task  # noqa: PLC0415 - tasks import services

    jobs = list(ExportJob.objects.filter(status=ExportJob.Status.QUEUED))
    for job in jobs:
        enqueue_job_on_commit(export_run_task, job)
    return jobs


def job_directory(job: ExportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / str(job.pk)


class ExportFileMissing(LookupError):
    """No file to serve for this job; the message says why."""


def export_job_file(job: ExportJob, relative: str) -> Path:
    """The job's file at ``relative`` (its download_path or card_path) under MEDIA_ROOT.

    Refuses a job that is not done, and any path that leaves MEDIA_ROOT or is gone.
    """
    if job.status != ExportJob.Status.DONE or not relative:
        raise ExportFileMissing(f"This export is {job.status}; nothing to download yet.")
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        raise ExportFileMissing("The export's file is gone; run the export again.")
    return path


# What each file an export writes is, for the download's Content-Type (a guess from the
# suffix said application/octet-stream for JSON Lines and Parquet).
CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".zip": "application/zip",
}


def export_content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix, "application/octet-stream")


def _data_name(job: ExportJob) -> str:
    stem = f"{job.project.slug}-{job.options.get('format', 'export')}"
    return {"jsonl": f"{stem}.jsonl", "parquet": f"{stem}.parquet"}.get(job.file_type, stem)


class ExportStopped(Exception):
    """The run no longer owns its job: cancelled, or taken over by a later delivery."""


def export_job_cancel(*, job: ExportJob, by: str) -> bool:
    """Stop an export: a queued one never starts, a running one stops at its next progress
    save; its files are removed (also when the worker that ran it is gone). False when it had
    already ended."""
    cancelled = ExportJob.objects.filter(
        pk=job.pk, status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING]
    ).update(
        status=ExportJob.Status.CANCELLED,
        error=f"Cancelled by {by}.",
        finished_at=timezone.now(),
    )
    if cancelled:
        shutil.rmtree(job_directory(job), ignore_errors=True)
    return bool(cancelled)


def export_job_run(job: ExportJob) -> ExportJob:
    """Run a queued (or interrupted) export job from the start; safe to run again.

    Each run owns the job through the start time its claim stamped: a second delivery (a
    redelivery, or beat sending a queued job again) takes the job over and starts clean, and
    the run it replaced stops at its next progress save, removes only its own folder, and never
    marks the job done or failed."""
    started = timezone.now()
    claimed = ExportJob.objects.filter(
        pk=job.pk, status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING]
    ).update(status=ExportJob.Status.RUNNING, started_at=started, completed=0)
    job.refresh_from_db()
    if not claimed:
        return job
    mine = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING, started_at=started)
    # Earlier runs' files go; this run writes in a folder of its own, so a run it took the job
    # over from cannot write into its files.
    shutil.rmtree(job_directory(job), ignore_errors=True)
    directory = job_directory(job) / started.strftime("%Y%m%dT%H%M%S%f")
    last_save = 0.0

    def progress(walked: int, total: int) -> None:
        nonlocal last_save
        now = time.monotonic()
        if now - last_save >= 0.5 or walked >= total:
            if not mine.update(completed=walked, total=total):
                raise ExportStopped
            last_save = now

    try:
        options = ExportOptions.from_json(job.options)
        result = export_to_path(
            job.project,
            options,
            directory / _data_name(job),
            file_type=job.file_type,
            progress=progress,
        )
        download = result.data
        if result.file_type == "hf":
            download = Path(shutil.make_archive(str(result.data), "zip", result.data))
    except ExportStopped:
        return _stopped(job, directory)
    except Exception as exc:
        if not mine.update(
            status=ExportJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        ):
            return _stopped(job, directory)
        job.refresh_from_db()
        return job
    done = mine.update(
        status=ExportJob.Status.DONE,
        rows=result.stats.rows,
        completed=F("total"),
        download_path=str(download.relative_to(settings.MEDIA_ROOT)),
        card_path=str(result.card.relative_to(settings.MEDIA_ROOT)),
        finished_at=timezone.now(),
    )
    if not done:  # cancelled or taken over after its last progress save
        return _stopped(job, directory)
    job.refresh_from_db()
    return job


def _stopped(job: ExportJob, directory: Path) -> ExportJob:
    """A run that lost its job (cancelled, or taken over by a later delivery): its own folder
    goes, and a cancelled job's whole folder."""
    shutil.rmtree(directory, ignore_errors=True)
    job.refresh_from_db()
    if job.status == ExportJob.Status.CANCELLED:
        shutil.rmtree(job_directory(job), ignore_errors=True)
    return job
