"""What every admin page of the console shares: pages that stay fast on tables of millions of rows.

- `CappedCountPaginator` never runs COUNT(*) over a whole table: it counts at most `CAP` rows, so
  a change list of a billion events costs what a list of ten thousand does.
- `FastAdmin` turns off the full-result count and uses that paginator.
- `RecentInline` shows a user's newest N related rows read-only, from the (owner, time) index.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode


def diagnosis_url(identity: str) -> str:
    return f"{reverse('support:diagnosis')}?{urlencode({'identity': identity})}"


class CappedCountPaginator(Paginator):
    CAP = 1_000

    @cached_property
    def count(self) -> int:
        query = self.object_list
        if isinstance(query, QuerySet):
            # Counting a LIMITed subquery reads at most CAP index entries. Past the cap, narrow the
            # list with a filter or a search.
            return query.order_by()[: self.CAP].count()
        return len(query)


class FastAdmin(admin.ModelAdmin):
    """Change lists that stay fast on huge tables.

    Search is exact-match on indexed columns (`search_exact`), OR'd with the rows of the user the
    term names (by email or username, looked up first in the small users table): Django's own
    search would OR a join to the users table into the big table's scan and read all of it.
    """

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    search_exact: tuple[str, ...] = ()
    search_user_field: str | None = "user"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(pk__in=[])
        for name in self.search_exact:
            condition |= Q(**{name: term})
        if self.search_user_field:
            users = list(
                get_user_model()
                .objects.filter(Q(email__iexact=term) | Q(username=term) | Q(public_id=term))
                .values_list("pk", flat=True)[:20]
            )
            if users:
                condition |= Q(**{f"{self.search_user_field}_id__in": users})
        return queryset.filter(condition), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rows here are written by the service itself; support changes things through actions.
        return False


class ReadOnlyAdmin(FastAdmin):
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


class RecentInline(admin.TabularInline):
    """The parent's newest `limit` rows, read-only, newest first."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    limit = 10
    fk_name: str = "user"
    order_by: tuple[str, ...] = ("-pk",)
    template = "admin/edit_inline/tabular.html"

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        request._support_inline_parent = obj  # type: ignore[attr-defined]
        return super().get_formset(request, obj, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        parent = getattr(request, "_support_inline_parent", None)
        if parent is None:
            return queryset.none()
        # The formset filters by parent itself and cannot take a sliced queryset, so pick the
        # newest ids first (one indexed query) and hand it a plain filter.
        ids = list(
            queryset.filter(**{self.fk_name: parent})
            .order_by(*self.order_by)
            .values_list("pk", flat=True)[: self.limit]
        )
        return queryset.filter(pk__in=ids).order_by(*self.order_by)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()
