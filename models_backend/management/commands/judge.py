from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Comparison, Project
from models_backend import services
from models_backend.errors import BackendError
from models_backend.management.commands._progress import (
    MAX_BATCH_SIZE,
    count_argument,
    run_or_follow,
)


class Command(BaseCommand):
    help = "Judge a project's comparisons with the LLM judge (both orders, a batched gpu job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--judge", default=services.DEFAULT_JUDGE, help="name to store")
        parser.add_argument("--source", default="", help="judge model source (default: Gemma)")
        parser.add_argument("--all", action="store_true", help="every comparison, not only routed")
        parser.add_argument("--limit", type=count_argument(), default=None)
        parser.add_argument("--batch-size", type=count_argument(MAX_BATCH_SIZE), default=8)
        parser.add_argument("--no-wait", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        comparisons = None
        if options["all"] or options["limit"]:
            queryset = Comparison.objects.for_project(project).order_by("id")
            if not options["all"]:
                queryset = queryset.for_judge()
            comparisons = list(queryset[: options["limit"]] if options["limit"] else queryset)
        try:
            job = services.judge_job_create(
                project=project,
                comparisons=comparisons,
                judge=options["judge"],
                judge_spec={"source": options["source"]} if options["source"] else {},
                batch_size=options["batch_size"],
                dispatch=not settings.CELERY_TASK_ALWAYS_EAGER,
            )
        except BackendError as exc:
            raise CommandError(str(exc)) from exc
        job = run_or_follow(
            job, services.judge_job_run, stdout=self.stdout, wait=not options["no_wait"]
        )
        self.stdout.write(self.style.SUCCESS(f"judge job {job.pk}: {job.status}"))
