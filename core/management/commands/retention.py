"""What each table keeps and for how long; `--prune` deletes what has aged out now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.retention import History, Kept, retention_policies, retention_prune


class Command(BaseCommand):
    help = "List every table's retention (or history kept on purpose); --prune deletes what has aged out."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--prune", action="store_true", help="Delete what has aged out, with progress.")

    def handle(self, *args: Any, prune: bool, **options: Any) -> None:
        if prune:
            totals = retention_prune(progress=lambda label, n: self.stdout.write(f"  {label}: {n} row(s) deleted"))
            self.stdout.write(self.style.SUCCESS(f"Pruned {sum(totals.values())} row(s) in {len(totals)} table(s)."))
            return
        for policy in retention_policies():
            if isinstance(policy, Kept):
                self.stdout.write(f"{policy.label:32} keeps {policy.describe()}: {policy.why}")
            elif isinstance(policy, History):
                self.stdout.write(f"{policy.label:32} history, kept on purpose: {policy.why}")
