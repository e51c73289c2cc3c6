from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importers import ImportFailed, prompts_import
from annotation.models import Project


class Command(BaseCommand):
    help = (
        "Import prompts from JSONL, one per line: "
        '{"id": "...", "category": "...", "turns": ["..."]} (or "prompt" / "conversation").'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        try:
            report = prompts_import(project=project, path=options["file"])
        except ImportFailed as failed:
            raise CommandError(str(failed)) from failed
        self.stdout.write(self.style.SUCCESS(f"Imported: {report.summary()}"))
