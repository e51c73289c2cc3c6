from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotation.importers import prompts_import
from annotation.management.commands._project import import_or_fail


class Command(BaseCommand):
    help = (
        "Import prompts from JSONL, one per line: "
        '{"id": "...", "category": "...", "turns": ["..."]} (or "prompt" / "conversation").'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args: Any, **options: Any) -> None:
        report = import_or_fail(prompts_import, options["project"], path=options["file"])
        self.stdout.write(self.style.SUCCESS(f"Imported: {report.summary()}"))
