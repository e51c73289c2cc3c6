from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotation.importers import candidates_import
from annotation.management.commands._project import import_or_fail


class Command(BaseCommand):
    help = (
        "Import model outputs from JSONL, one per line: "
        '{"prompt_id": "...", "model": "...", "response": "..."} (or "responses": [...]).'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument(
            "--no-comparisons", action="store_true", help="do not pair the models up"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = import_or_fail(
            candidates_import,
            options["project"],
            path=options["file"],
            create_comparisons=not options["no_comparisons"],
        )
        self.stdout.write(self.style.SUCCESS(f"Imported: {report.summary()}"))
