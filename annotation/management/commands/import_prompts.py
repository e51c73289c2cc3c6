from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importers import ImportFailed, prompts_import
from annotation.management.commands._project import project_or_fail


class Command(BaseCommand):
    help = (
        "Import prompts from JSONL, one per line: "
        '{"id": "...", "category": "...", "turns": ["..."]} (or "prompt" / "conversation").'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_or_fail(options["project"])
        try:
            report = prompts_import(project=project, path=options["file"])
        except ImportFailed as failed:
            raise CommandError(str(failed)) from failed
        self.stdout.write(self.style.SUCCESS(f"Imported: {report.summary()}"))
