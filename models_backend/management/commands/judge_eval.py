from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_backend.loaders import GEMMA3_270M_PACKAGE


class Command(BaseCommand):
    help = (
        "Score an LLM judge against human majorities on pairs in the MT-Bench schema "
        "(pairs_human_vs_gpt4.jsonl): agreement with and without ties, position consistency, "
        "pairs per second."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pairs", type=Path, required=True)
        parser.add_argument(
            "--judge",
            default=GEMMA3_270M_PACKAGE,
            help="hub id, local path, .gguf file or package:NAME (default: the packaged Gemma)",
        )
        parser.add_argument("--limit", type=int, default=None, help="a seeded sample of N pairs")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--format", choices=["json", "table"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        from models_backend.judge import JudgeConfig, judge_pairs
        from models_backend.judge_eval import evaluate_judge, load_records, sample_records
        from models_backend.loaders import ModelSpec, get_model

        if not options["pairs"].is_file():
            raise CommandError(f"{options['pairs']}: no such file")
        try:
            records = load_records(options["pairs"])
        except (ValueError, KeyError) as exc:
            raise CommandError(f"{options['pairs']}: {exc}") from exc
        if options["limit"]:
            records = sample_records(records, options["limit"], seed=options["seed"])
        loaded = get_model(ModelSpec(source=options["judge"]))
        config = JudgeConfig(batch_size=options["batch_size"])
        report = evaluate_judge(records, lambda pairs: judge_pairs(loaded, pairs, config))
        report["judge"] = options["judge"]
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            for key, value in report.items():
                self.stdout.write(f"{key:>32}: {value}")
