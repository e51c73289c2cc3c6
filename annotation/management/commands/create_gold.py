from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.gold import gold_pairs_create
from annotation.management.commands._project import project_or_fail


class Command(BaseCommand):
    help = (
        "Create gold pairs (a real answer against an answer to another prompt) and set how "
        "often they are served."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--count", type=int, default=20, help="gold pairs to add")
        parser.add_argument("--rate", type=float, help="share of served pairs that are gold")
        parser.add_argument("--seed", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_or_fail(options["project"])
        rate = options["rate"]
        if rate is not None:
            if not 0.0 <= rate <= 1.0:
                raise CommandError("--rate must be between 0 and 1")
            project.gold_rate = rate
            project.save(update_fields=["gold_rate"])
        made = gold_pairs_create(project=project, count=options["count"], seed=options["seed"])
        self.stdout.write(
            self.style.SUCCESS(f"{made} gold pairs created; gold rate {project.gold_rate:.0%}")
        )
