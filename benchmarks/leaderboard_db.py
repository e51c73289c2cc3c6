"""The full leaderboard path from PostgreSQL: votes in the database -> SQL GROUP BY ->
Bradley-Terry fit + bootstrap -> JSON. Used by `benchmarks/leaderboard.py --db URL`.

It loads the generated votes into a scratch database (created if missing, emptied first)
with COPY, then times `selectors.leaderboard_compute` exactly as the web app and the
`leaderboard` command call it.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from annotation.ratings import BattleCounts

ROOT = Path(__file__).resolve().parents[1]
WINNERS = {1.0: ("left", "model_a"), 0.0: ("right", "model_b"), 0.5: ("tie", "tie")}


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prefarena.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _copy(cursor: Any, table: str, columns: list[str], rows: Any) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(str(value) for value in row))
        buffer.write("\n")
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def load_votes(counts: BattleCounts) -> Any:
    """Empty the scratch database and load one vote row per counted vote."""
    from django.db import connection, transaction

    from annotation.models import Candidate, Comparison, ModelEntry, Project, Prompt

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE annotation_project, annotation_annotator RESTART IDENTITY CASCADE")
    project = Project.objects.create(slug="bench", title="Benchmark", votes_per_comparison=1)
    prompt = Prompt.objects.create(project=project, external_id="p", turns=["?"])
    models = ModelEntry.objects.bulk_create(
        [ModelEntry(project=project, name=name) for name in counts.models]
    )
    candidates = Candidate.objects.bulk_create(
        [
            Candidate(prompt=prompt, model=m, responses=["x" * (50 + i)])
            for i, m in enumerate(models)
        ]
    )
    pairs = sorted({(int(a), int(b)) for a, b in zip(counts.model_a, counts.model_b, strict=True)})
    comparisons = Comparison.objects.bulk_create(
        [
            Comparison(
                project=project,
                prompt=prompt,
                candidate_a=candidates[a],
                candidate_b=candidates[b],
                votes_wanted=1,
            )
            for a, b in pairs
        ],
        batch_size=5000,
    )
    comparison_of = {pair: c.pk for pair, c in zip(pairs, comparisons, strict=True)}
    per_comparison: dict[int, int] = {}
    for a, b, count in zip(counts.model_a, counts.model_b, counts.count, strict=True):
        key = comparison_of[int(a), int(b)]
        per_comparison[key] = per_comparison.get(key, 0) + int(count)
    annotators = max(per_comparison.values())
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        _copy(
            raw,
            "annotation_annotator",
            ["pseudonym", "state", "created_at"],
            ((f"bench-{i}", "active", "2026-01-01 00:00:00+00") for i in range(annotators)),
        )
        cursor.execute("SELECT min(id) FROM annotation_annotator")
        first_annotator = cursor.fetchone()[0]
        used = dict.fromkeys(per_comparison, 0)

        def vote_rows() -> Any:
            for a, b, outcome, count in zip(
                counts.model_a, counts.model_b, counts.outcome, counts.count, strict=True
            ):
                comparison = comparison_of[int(a), int(b)]
                choice, winner = WINNERS[float(outcome)]
                start = used[comparison]
                used[comparison] += int(count)
                for k in range(start, start + int(count)):
                    yield (comparison, first_annotator + k, "t", "t", "t", choice, winner, "", "",
                           "import", "2026-01-01 00:00:00+00")  # fmt: skip

        _copy(
            raw,
            "annotation_vote",
            [
                "comparison_id",
                "annotator_id",
                "left_is_a",
                "side_recorded",
                "time_recorded",
                "choice",
                "winner",
                "client_hash",
                "ip_hash",
                "source",
                "created_at",
            ],
            vote_rows(),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project


def run_from_postgres(
    counts: BattleCounts, *, url: str, rounds: int, repeats: int, seed: int
) -> dict[str, Any]:
    _ensure_database(url)
    _setup_django(url)
    from annotation import selectors

    started = time.perf_counter()
    project = load_votes(counts)
    loaded = time.perf_counter() - started
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = selectors.leaderboard_compute(
            project, selectors.LeaderboardFilters(), bootstrap_rounds=rounds, seed=seed
        )
        payload = json.dumps({"models": result.board.rows, "timings_seconds": result.timings})
        seconds = time.perf_counter() - t0
        if best is None or seconds < best["seconds"]:
            best = {"seconds": seconds, "timings": result.timings, "json_bytes": len(payload)}
    assert best is not None
    best["load_seconds"] = loaded
    best["votes_in_db"] = counts.total_votes
    best["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best["ratings"] = np.array([row["rating"] for row in result.board.rows])
    return best
