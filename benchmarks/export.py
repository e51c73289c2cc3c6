"""Benchmark: dataset export from PostgreSQL against PostgreSQL's own COPY of the same rows.

    .venv/bin/python benchmarks/export.py --db postgres://postgres@127.0.0.1:5432/prefarena_bench_export
    .venv/bin/python benchmarks/export.py --db URL --votes 100000 --reload

The scratch database (created if missing) gets a project built from the real MT-Bench answers
(80 questions x 2 turns, 33 models, every pair of models per prompt: 84,480 comparisons with
real texts) and ``--votes`` votes spread over them, loaded with COPY; a later run reuses it
unless the vote count differs or ``--reload``.

Then, each in a fresh process so its peak memory (max RSS) is its own, side by side:

* ``COPY (SELECT ...) TO STDOUT``: the same rows as the raw-votes export (vote, comparison,
  prompt, both answers, models, side, choice, winner, time, annotator and state), in the same
  order, read through psycopg and written to a file;
* ``export_dataset --format votes`` as JSON Lines, and as Parquet.

Target: the exports reach at least 20% of COPY's rows per second with peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MTBENCH = ROOT.parent / "shared" / "data" / "mtbench"
SLUG = "bench-export"
ANNOTATORS = 20_000
VOTE_COLUMNS = [
    "comparison_id",
    "annotator_id",
    "left_is_a",
    "side_recorded",
    "time_recorded",
    "choice",
    "winner",
    "time_to_vote_ms",
    "client_hash",
    "ip_hash",
    "source",
    "created_at",
]

COPY_SQL = """
COPY (
  SELECT v.id, c.id, p.external_id, p.category, p.turns, ma.name, mb.name,
         ca.responses, cb.responses, v.left_is_a, v.side_recorded, v.choice, v.winner,
         v.time_to_vote_ms, v.created_at, a.pseudonym, a.state, v.source
  FROM annotation_vote v
  JOIN annotation_comparison c ON c.id = v.comparison_id
  JOIN annotation_prompt p ON p.id = c.prompt_id
  JOIN annotation_candidate ca ON ca.id = c.candidate_a_id
  JOIN annotation_candidate cb ON cb.id = c.candidate_b_id
  JOIN annotation_modelentry ma ON ma.id = ca.model_id
  JOIN annotation_modelentry mb ON mb.id = cb.model_id
  JOIN annotation_annotator a ON a.id = v.annotator_id
  WHERE c.project_id = %s AND NOT c.is_gold AND a.state = 'active'
  ORDER BY c.id, v.id
) TO STDOUT
"""


def _setup(url: str, *, migrate: bool) -> None:
    """Django on the scratch database; migrated by the parent only, so that a measuring
    child's peak memory is the export's, not the migration loader's."""
    if not migrate:
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prefarena.settings")
        import django

        django.setup()
        return
    from benchmarks.leaderboard_db import _ensure_database, _setup_django

    _ensure_database(url)
    _setup_django(url)


def _vote_count() -> int:
    from annotation.models import Project, Vote

    project = Project.objects.filter(slug=SLUG).first()
    return Vote.objects.filter(comparison__project=project).count() if project else -1


def load(votes: int, seed: int = 0) -> float:
    """Empty the scratch database, import MT-Bench with every model, COPY in the votes."""
    from django.db import connection, transaction

    from annotation.importers import mtbench_import
    from annotation.models import Comparison, Project
    from benchmarks.leaderboard_db import _copy

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE annotation_project, annotation_annotator RESTART IDENTITY CASCADE")
    mtbench_import(directory=MTBENCH, project_slug=SLUG, votes_per_comparison=3)
    project = Project.objects.get(slug=SLUG)
    comparison_ids = list(Comparison.objects.filter(project=project).values_list("pk", flat=True))
    rng = random.Random(seed)
    per = votes // len(comparison_ids)
    extra = votes - per * len(comparison_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        _copy(
            raw,
            "annotation_annotator",
            ["pseudonym", "state", "state_reason", "created_at"],
            ((f"bench-{i}", "active", "", "2026-01-01 00:00:00+00") for i in range(ANNOTATORS)),
        )
        cursor.execute("SELECT min(id) FROM annotation_annotator")
        first = cursor.fetchone()[0]

        def rows() -> Any:
            for index, comparison in enumerate(comparison_ids):
                count = per + (1 if index < extra else 0)
                offset = rng.randrange(ANNOTATORS)
                for k in range(count):
                    annotator = first + (offset + k * 997) % ANNOTATORS
                    left = rng.random() < 0.5
                    winner = rng.choice(("model_a", "model_b", "model_a", "model_b", "tie"))
                    if winner == "tie":
                        choice = "tie"
                    else:
                        choice = "left" if (winner == "model_a") == left else "right"
                    yield (comparison, annotator, "t" if left else "f", "t", "t", choice, winner,
                           rng.randrange(3000, 90000), "", "", "web",
                           f"2026-01-{1 + k % 28:02d} 12:00:00+00")  # fmt: skip

        _copy(
            raw,
            "annotation_vote",
            VOTE_COLUMNS,
            rows(),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def measure(what: str, out: Path) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from django.db import connection

    from annotation.exports.options import parse_options
    from annotation.exports.service import export_to_path
    from annotation.models import Project

    project = Project.objects.get(slug=SLUG)
    started = time.perf_counter()
    if what == "copy":
        rows = 0
        with (
            connection.cursor() as cursor,
            out.open("wb") as handle,
            cursor.cursor.copy(COPY_SQL, [project.pk]) as copy,
        ):
            for block in copy:
                handle.write(block)
                rows += bytes(block).count(b"\n")
    else:
        result = export_to_path(project, parse_options({"format": "votes"}), out)
        rows = result.stats.rows
    seconds = time.perf_counter() - started
    return {
        "what": what,
        "rows": rows,
        "seconds": seconds,
        "bytes": out.stat().st_size,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(url: str, what: str, out: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--db", url, "--measure", what, "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get("PREFARENA_BENCH_DB",
                        "postgres://postgres@127.0.0.1:5432/prefarena_bench_export"))  # fmt: skip
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--measure", choices=["copy", "jsonl", "parquet"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _setup(args.db, migrate=not args.measure)
    if args.measure:
        print(json.dumps(measure(args.measure, args.out)))
        return
    if args.reload or _vote_count() != args.votes:
        print(f"loading {args.votes:,} votes over the MT-Bench comparisons ...", flush=True)
        print(f"loaded in {load(args.votes):.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="prefarena-export-bench-") as scratch:
        results = [
            _child(args.db, "copy", Path(scratch) / "copy.tsv"),
            _child(args.db, "jsonl", Path(scratch) / "votes.jsonl"),
            _child(args.db, "parquet", Path(scratch) / "votes.parquet"),
        ]
    copy_rate = results[0]["rows"] / results[0]["seconds"]
    print(f"\n{args.votes:,} votes; raw-votes rows (prompt and both answers on every row)")
    header = ("rows", "seconds", "rows/s", "of COPY", "peak RSS", "size")
    print(f"{'':<22}" + "".join(f"{name:>10}" for name in header))
    for result in results:
        rate = result["rows"] / result["seconds"]
        label = {"copy": "PostgreSQL COPY", "jsonl": "export JSONL", "parquet": "export Parquet"}
        print(
            f"{label[result['what']]:<22}{result['rows']:>10,}{result['seconds']:>10.1f}"
            f"{rate:>10,.0f}{rate / copy_rate:>10.0%}{result['max_rss_mb']:>8.0f}MB"
            f"{result['bytes'] / 1e6:>8.0f}MB"
        )
    print("target: exports >= 20% of COPY's rows/s, peak RSS < 300 MB")


if __name__ == "__main__":
    main()
