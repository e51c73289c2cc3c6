from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importers import ImportFailed
from annotation.models import Project
from models_backend.importers import judgments_import


class Command(BaseCommand):
    help = (
        "Import an LLM judge's MT-Bench pairwise verdicts (FastChat gpt-4_pair.jsonl format) "
        "into a project imported with import_mtbench (all or nothing)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="JSON lines: question_id, turn, model_a, ...")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--judge", required=True, help="the judge's name in this arena")
        parser.add_argument(
            "--credit",
            default="",
            help="where the verdicts come from and their licence, named in every export's card",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        path: Path = options["file"]
        try:
            with path.open(encoding="utf-8-sig") as lines:
                report = judgments_import(
                    project=project,
                    judge=options["judge"],
                    lines=lines,
                    source=path.name,
                    credit=options["credit"],
                )
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except ImportFailed as failed:
            raise CommandError(str(failed)) from failed
        self.stdout.write(
            self.style.SUCCESS(f"{options['judge']} in {project.slug}: {report.summary()}")
        )
