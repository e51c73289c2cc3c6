from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.exports.options import FORMATS, SOURCES, ExportRequestInvalid
from annotation.exports.service import export_options, export_to_path
from annotation.management.commands._project import project_or_fail
from models_backend.management.commands._progress import progress_bar


class Command(BaseCommand):
    help = (
        "Export a preference dataset: --format votes|pairs|dpo|openai|hh --out FILE.jsonl, "
        "FILE.parquet or DIR (a Hugging Face datasets folder), with a dataset card."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", choices=FORMATS, default="dpo")
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--source", choices=SOURCES, default="human")
        parser.add_argument("--since", help="ISO date or date-time, inclusive")
        parser.add_argument("--until", help="ISO date or date-time, exclusive")
        parser.add_argument("--categories", help="comma-separated")
        parser.add_argument("--models", help="comma-separated; both models of a pair listed")
        parser.add_argument("--min-agreement", type=float, default=0.0)
        parser.add_argument("--include-flagged", action="store_true")
        parser.add_argument(
            "--single-turn", action="store_true", help="only comparisons of one-turn prompts"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_or_fail(options["project"])
        try:
            export = export_options(project, options)
            result = export_to_path(
                project, export, options["out"], progress=progress_bar(self.stderr)
            )
        except ExportRequestInvalid as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:  # an unwritable or missing place, a file where a folder is due
            raise CommandError(f"cannot write {options['out']}: {exc.strerror or exc}") from exc
        self.stderr.write("")
        skipped = ", ".join(f"{n} {why}" for why, n in result.stats.skipped.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.stats.rows} rows from {result.stats.comparisons} comparisons written "
                f"to {result.data} ({result.file_type}); card {result.card}"
                + (f"; left out {skipped}" if skipped else "")
            )
        )
