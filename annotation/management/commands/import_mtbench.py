from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importers import ImportFailed, mtbench_import


def split_csv(value: str | None) -> list[str] | None:
    return [item.strip() for item in value.split(",") if item.strip()] if value else None


class Command(BaseCommand):
    help = "Import FastChat MT-Bench questions and model answers into a project (all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "directory", type=Path, help="folder with question.jsonl and model_answer/"
        )
        parser.add_argument("--project", required=True, help="project slug (created if missing)")
        parser.add_argument("--models", help="comma-separated model names (default: all)")
        parser.add_argument("--questions", help="comma-separated question ids (default: all)")
        parser.add_argument("--title", default="", help="title of a new project")
        parser.add_argument("--votes-per-comparison", type=int, default=3)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = mtbench_import(
                directory=options["directory"],
                project_slug=options["project"],
                models=split_csv(options["models"]),
                questions=split_csv(options["questions"]),
                title=options["title"],
                votes_per_comparison=options["votes_per_comparison"],
            )
        except ImportFailed as failed:
            raise CommandError(str(failed)) from failed
        self.stdout.write(
            self.style.SUCCESS(f"Imported into {options['project']}: {report.summary()}")
        )
