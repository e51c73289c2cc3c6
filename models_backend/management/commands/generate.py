from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import ModelEntry, Prompt
from models_backend import services
from models_backend.errors import BackendError
from models_backend.management.commands._progress import (
    MAX_BATCH_SIZE,
    count_argument,
    run_or_follow,
)


class Command(BaseCommand):
    help = "Generate a competitor's answers to the project's prompts (a batched gpu job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--model", required=True, help="the competitor's name")
        parser.add_argument("--prompts", help="comma-separated prompt ids (default: all)")
        parser.add_argument("--batch-size", type=count_argument(MAX_BATCH_SIZE), default=16)
        parser.add_argument("--no-wait", action="store_true", help="queue it and return")

    def handle(self, *args: Any, **options: Any) -> None:
        model = ModelEntry.objects.filter(
            project__slug=options["project"], name=options["model"]
        ).first()
        if model is None:
            raise CommandError(f"no model {options['model']!r} in project {options['project']!r}")
        prompts = None
        if options["prompts"]:
            wanted = [p.strip() for p in options["prompts"].split(",") if p.strip()]
            prompts = list(Prompt.objects.filter(project=model.project, external_id__in=wanted))
            missing = set(wanted) - {p.external_id for p in prompts}
            if missing:
                raise CommandError(f"unknown prompt ids: {', '.join(sorted(missing))}")
        try:
            job = services.generation_job_create(
                model=model,
                prompts=prompts,
                batch_size=options["batch_size"],
                dispatch=not settings.CELERY_TASK_ALWAYS_EAGER,
            )
        except BackendError as exc:
            raise CommandError(str(exc)) from exc
        job = run_or_follow(
            job, services.generation_job_run, stdout=self.stdout, wait=not options["no_wait"]
        )
        self.stdout.write(self.style.SUCCESS(f"generation job {job.pk}: {job.status}"))
