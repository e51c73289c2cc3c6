from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotation import moderation
from annotation.management.commands._project import project_or_fail
from annotation.models import Annotator


class Command(BaseCommand):
    help = (
        "Per annotator of a project: votes, trust score, state and the signals behind it. "
        "Read-only unless --apply, which stores the verdicts and flags the suspicious."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument("--min-votes", type=int, default=0, help="hide smaller annotators")
        parser.add_argument(
            "--apply", action="store_true", help="store verdicts and flag (as the beat task does)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_or_fail(options["project"])
        if options["apply"]:
            report = moderation.fraud_detect(project=project)
            self.stderr.write(report.summary())
            verdicts = report.assessments
        else:
            verdicts = moderation.fraud_assess(project)
        names = [verdict.annotator for verdict in verdicts]
        states = dict(
            Annotator.objects.filter(pseudonym__in=names).values_list("pseudonym", "state")
        )
        rows = [
            {
                "annotator": verdict.annotator,
                "votes": verdict.votes,
                "trust": round(verdict.trust, 4),
                "state": states.get(verdict.annotator, ""),
                "suspicious": verdict.flagged,
                "reasons": verdict.reasons,
                "signals": verdict.signals,
            }
            for verdict in verdicts
            if verdict.votes >= options["min_votes"]
        ]
        if options["format"] == "json":
            self.stdout.write(json.dumps({"project": project.slug, "annotators": rows}, indent=2))
            return
        self.stdout.write(f"{'annotator':<24} {'votes':>6} {'trust':>6} {'state':<8} reasons")
        for row in rows:
            reasons = "; ".join(row["reasons"]) or "-"
            self.stdout.write(
                f"{row['annotator']:<24} {row['votes']:>6} {row['trust']:>6.2f} "
                f"{row['state']:<8} {reasons}"
            )
