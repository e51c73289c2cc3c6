from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotation.management.commands._project import import_or_fail
from annotation.vote_import import votes_import


class Command(BaseCommand):
    help = (
        "Import votes from JSONL, one per line: annotator, a comparison id or (question_id, "
        "turn, model_a, model_b), winner (model_a, model_b, tie, tie (bothbad)), and optional "
        "tstamp, time_to_vote_ms, shown_left, fingerprint. All or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument(
            "--skip-unmatched",
            action="store_true",
            help="leave out (and count) votes on pairs this project lacks, such as pairs of "
            "models it did not import, instead of refusing the file",
        )
        parser.add_argument(
            "--credit",
            default="",
            help="where the votes come from and their licence, named in every export's card",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = import_or_fail(
            votes_import,
            options["project"],
            path=options["file"],
            credit=options["credit"],
            skip_unmatched=options["skip_unmatched"],
        )
        for note in report.notes[:20]:
            self.stdout.write(f"  {note}")
        if len(report.notes) > 20:
            self.stdout.write(f"  … and {len(report.notes) - 20} more")
        self.stdout.write(self.style.SUCCESS(f"Imported: {report.summary()}"))
