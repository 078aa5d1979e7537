"""What every table keeps, and for how long: declared by each app, pruned by one periodic task.

Each app lists its tables in its own `retention.py`, as either

- `kept(...)`: rows older than a setting's age (by one datetime column, optionally only rows matching
  a condition, such as finished work) are deleted, in batches so no lock is held for long; or
- `history(...)`: kept on purpose, with the reason (device events stay on IFTTT's timelines).

`retention_prune` (the `core.retention_prune` task, daily) walks the declarations; a test walks every
model of the project and fails for a table declared neither way, so nothing is kept by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

Unit = Literal["days", "hours", "items"]


@dataclass(frozen=True)
class Kept:
    """Rows of `model` whose `age_field` is older than the `setting` (in `unit`) are deleted.

    `only` narrows the rows that age out (open work is never pruned); `before_delete` sees each batch
    inside the transaction that deletes it (to roll detail up into summaries first).
    """

    model: type[models.Model]
    age_field: str
    setting: str
    unit: Unit
    why: str
    only: models.Q | None = None
    before_delete: Callable[[models.QuerySet[Any]], None] | None = None
    # A custom pruner for tables that do not age out by a column (feeds are capped per identity).
    prune: Callable[[int], int] | None = None
    # What is kept, in words, where no setting says it (a custom pruner's own rule).
    keeps: str = ""

    @property
    def label(self) -> str:
        return self.model._meta.label

    def keep_for(self) -> timedelta:
        amount = float(getattr(settings, self.setting))
        return timedelta(hours=amount) if self.unit == "hours" else timedelta(days=amount)

    def describe(self) -> str:
        """What is kept, as the README's table and `manage.py retention` say it."""
        if self.keeps:
            return self.keeps
        value = getattr(settings, self.setting)
        unit = "per identity" if self.unit == "items" else self.unit
        return f"{value:g} {unit} (`{self.setting}`)"


@dataclass(frozen=True)
class History:
    """Rows of `model` are kept on purpose; `why` says so in the README and the retention listing."""

    model: type[models.Model]
    why: str

    @property
    def label(self) -> str:
        return self.model._meta.label


Policy = Kept | History
_policies: list[Policy] = []
_discovered = False


def kept(
    model: type[models.Model],
    *,
    by: str,
    setting: str,
    unit: Unit = "days",
    why: str,
    only: models.Q | None = None,
    before_delete: Callable[[models.QuerySet[Any]], None] | None = None,
    prune: Callable[[int], int] | None = None,
    keeps: str = "",
) -> None:
    _policies.append(Kept(model, by, setting, unit, why, only, before_delete, prune, keeps))


def history(model: type[models.Model], *, why: str) -> None:
    _policies.append(History(model, why))


def retention_policies() -> list[Policy]:
    """Every app's declarations (each app's `retention.py`, imported once)."""
    global _discovered
    if not _discovered:
        autodiscover_modules("retention")
        _discovered = True
    return list(_policies)


def _prune_one(policy: Kept, *, batch: int, now: Any) -> int:
    if policy.prune is not None:
        return policy.prune(batch)
    manager = policy.model._default_manager
    rows = manager.filter(**{f"{policy.age_field}__lt": now - policy.keep_for()})
    if policy.only is not None:
        rows = rows.filter(policy.only)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(rows.order_by().values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            chunk = manager.filter(pk__in=ids)
            if policy.before_delete is not None:
                policy.before_delete(chunk)
            deleted += chunk.delete()[1].get(policy.label, 0)


def retention_prune(
    *, batch: int = 5000, progress: Callable[[str, int], None] | None = None, now: Any = None
) -> dict[str, int]:
    """Delete what every `kept` declaration lets go; rows deleted per table (label)."""
    now = now or timezone.now()
    totals: dict[str, int] = {}
    for policy in retention_policies():
        if isinstance(policy, Kept):
            count = _prune_one(policy, batch=batch, now=now)
            totals[policy.label] = totals.get(policy.label, 0) + count
            if progress is not None:
                progress(policy.label, count)
    return totals
