from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import ratings, selectors
from annotation.importers import ImportFailed, read_jsonl
from annotation.management.commands._project import project_or_fail
from annotation.moments import parse_moment

FIELDS = (
    "rank",
    "model",
    "rating",
    "lower",
    "upper",
    "votes",
    "win_rate",
    "group",
    "provisional",
)


def read_battles(path: Path) -> list[dict[str, Any]]:
    """FastChat-style battle log, CSV or JSONL, with model_a, model_b and winner."""
    if path.suffix.lower() == ".csv":
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                battles = list(csv.DictReader(handle))
        except OSError as exc:
            raise CommandError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    else:
        errors: list[str] = []
        battles = [record for _, record in read_jsonl(path, errors)]
        if errors:
            raise ImportFailed(errors)
    for number, battle in enumerate(battles, start=1):
        if not isinstance(battle, dict) or not {"model_a", "model_b", "winner"} <= battle.keys():
            raise CommandError(f"{path}: record {number} needs model_a, model_b and winner")
    return battles


class Command(BaseCommand):
    help = "Print a Bradley-Terry leaderboard with 95% intervals for a project or a battle log."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--project", help="project slug (SQL aggregation over its votes)")
        target.add_argument("--battles", type=Path, help="CSV or JSONL: model_a, model_b, winner")
        parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds")
        parser.add_argument("--ci", choices=["bootstrap", "sandwich"], default="bootstrap")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
        parser.add_argument("--source", choices=selectors.SOURCES, default="human")
        parser.add_argument("--category", default="")
        parser.add_argument("--since", help="ISO date-time, inclusive")
        parser.add_argument("--until", help="ISO date-time, exclusive")
        parser.add_argument("--include-flagged", action="store_true")
        parser.add_argument("--style-control", action="store_true", help="length as covariate")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["bootstrap"] < 1 and options["ci"] == "bootstrap":
            raise CommandError("--bootstrap must be at least 1")
        if options["battles"]:
            board, timings = self._from_battles(options)
        else:
            board, timings = self._from_project(options)
        self._write(board.rows, timings, options["format"])

    def _from_battles(self, options: dict[str, Any]) -> tuple[ratings.Leaderboard, dict]:
        started = time.perf_counter()
        try:
            battles = read_battles(options["battles"])
            counts = ratings.BattleCounts.from_battles(battles)
        except (ImportFailed, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        loaded = time.perf_counter() - started
        board = ratings.leaderboard(
            counts, bootstrap_rounds=options["bootstrap"], ci=options["ci"], seed=options["seed"]
        )
        timings = {"read_and_aggregate": loaded, **board.timings}
        timings["total"] = time.perf_counter() - started
        return board, timings

    def _from_project(self, options: dict[str, Any]) -> tuple[ratings.Leaderboard, dict]:
        project = project_or_fail(options["project"])
        filters = selectors.LeaderboardFilters(
            source=options["source"],
            include_flagged=options["include_flagged"],
            since=self._when(options["since"], "--since"),
            until=self._when(options["until"], "--until"),
            category=options["category"],
        )
        result = selectors.leaderboard_compute(
            project,
            filters,
            bootstrap_rounds=options["bootstrap"],
            ci=options["ci"],
            seed=options["seed"],
            style_control=options["style_control"],
        )
        return result.board, result.timings

    @staticmethod
    def _when(value: str | None, flag: str) -> Any:
        if not value:
            return None
        try:
            return parse_moment(value, flag.lstrip("-"))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _write(self, rows: list[dict], timings: dict[str, float], fmt: str) -> None:
        if fmt == "json":
            payload = {
                "models": [{key: row[key] for key in FIELDS} for row in rows],
                "timings_seconds": timings,
            }
            self.stdout.write(json.dumps(payload, indent=2))
        elif fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            self.stdout.write(buffer.getvalue().rstrip("\n"))
        else:
            self.stdout.write(
                f"{'rank':>4}  {'model':<32} {'rating':>7}  {'95% CI':>15}  {'votes':>7}"
            )
            for row in rows:
                interval = f"{row['lower']:.0f} to {row['upper']:.0f}"
                # Fewer than PROVISIONAL_VOTES votes: ranked after the others.
                mark = "  provisional" if row["provisional"] else ""
                self.stdout.write(
                    f"{row['rank']:>4}  {row['model'][:32]:<32} {row['rating']:>7.1f}  "
                    f"{interval:>15}  {row['votes']:>7}{mark}"
                )
            total = timings.get("total", 0.0)
            self.stderr.write(f"computed in {total:.3f} s")
