"""Route a project's judged pending comparisons now (what the beat task does), optionally
turning routing on first and refitting the disagreement model."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._project import project_or_fail
from routing import selectors, services
from routing.models import POLICY_SETTINGS

# The policy settings this command takes, each a number in [0, 1].
SHARES = ("budget_share", "audit_fraction", "audit_tilt")


class Command(BaseCommand):
    help = "Route a project's judged pending comparisons between humans and the judge."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--enable",
            action="store_true",
            help="turn routing on (holds unstarted comparisons back for the router)",
        )
        parser.add_argument("--judge", default=None, help="judge whose verdicts to read")
        parser.add_argument("--budget-share", type=float, default=None)
        parser.add_argument("--audit-fraction", type=float, default=None)
        parser.add_argument(
            "--audit-tilt",
            type=float,
            default=None,
            help="0: every pair has the same chance of an audit; 1: in proportion to its risk",
        )
        parser.add_argument("--retrain", action="store_true", help="refit the model first")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_or_fail(options["project"])
        policy = selectors.policy_for(project)
        changes = any(options[key] is not None for key in ("judge", *SHARES))
        if options["enable"] or policy is None or changes:
            if policy is None and not options["enable"]:
                raise CommandError(f"routing is off for {project.slug}: pass --enable")
            # The current settings (or, for a new policy, routing_policy_set's defaults).
            fields = {name: getattr(policy, name) for name in POLICY_SETTINGS if policy}
            fields.pop("judge", None)
            if options["enable"]:
                fields["enabled"] = True
            for key in SHARES:
                if options[key] is not None:
                    if not 0.0 <= options[key] <= 1.0:
                        raise CommandError(f"--{key.replace('_', '-')} must lie in [0, 1]")
                    fields[key] = options[key]
            policy = services.routing_policy_set(
                project=project,
                judge=options["judge"],
                **fields,
            )
        fit = services.router_retrain(project=project, force=options["retrain"])
        result = services.comparisons_route(project=project, force=True)
        escalated = services.judge_pairs_escalate(project=project)
        if options["format"] == "json":
            report = {
                "project": project.slug,
                "judge": policy.judge,
                "refitted_on": fit.labelled if fit else None,
                "routed": result.routed,
                "human": result.human,
                "judge_only": result.judge,
                "audit": result.both,
                "waiting_for_judge": result.waiting_for_judge,
                "escalated": escalated,
            }
            self.stdout.write(json.dumps(report))
        else:
            more = f"; {escalated} judge-labelled pairs escalated to people" if escalated else ""
            self.stdout.write(f"{result}{more}")
