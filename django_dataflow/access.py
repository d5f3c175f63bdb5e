"""Who may see what while a run executes: the user's Django model permissions and the row_filter
each registered model may declare.

The executor activates an Access for the run's user (user=None, trusted code, activates none);
nodes, the filter translator, ordering and aggregation ask it through current(). Without an active
Access everything is visible: QueryBuilder and code outside runs are trusted like user=None.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_permission_codename
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP

from django_dataflow.exceptions import PermissionDenied

if TYPE_CHECKING:
    from django_dataflow.query.paths import FieldPath
    from django_dataflow.registry import ModelEntry

#: Primary keys per query when checking written rows (below SQLite's bound-variable limit).
CHECK_CHUNK = 5_000

_current: ContextVar[Access | None] = ContextVar("django_dataflow_access", default=None)


def permission_name(model: type[Model], action: str) -> str:
    """'app_label.codename' of a Django model permission ('view', 'add', 'change', 'delete')."""
    meta = model._meta
    return f"{meta.app_label}.{get_permission_codename(action, meta)}"


class Access:
    """One run's user: cached permission answers and row filters, and the checks built on them."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self._perms: dict[str, bool] = {}
        self._scopes: dict[ModelEntry, tuple[Q | None, bool]] = {}

    # Model permissions ---------------------------------------------------------------------------

    def has_perm(self, permission: str) -> bool:
        """user.has_perm, asked once per permission and run."""
        if permission not in self._perms:
            self._perms[permission] = bool(self.user.has_perm(permission))
        return self._perms[permission]

    def require(self, model: type[Model], action: str, *, reason: str) -> None:
        """PermissionDenied naming the permission unless the user holds it."""
        permission = permission_name(model, action)
        if not self.has_perm(permission):
            raise PermissionDenied(f"{reason} needs permission '{permission}'", permission=permission)

    def check_path(self, path: FieldPath, *, filtering: bool) -> None:
        """A dotted name through relations reads the related models: it needs their view permission.

        Filters are limited to the related rows the user may see (see filters.py); ordering and
        aggregating by a row-filtered model's fields would reveal the hidden rows, so they are refused.
        """
        for hop in path.hops:
            self.require(hop.entry.model, "view", reason=f"'{path.dotted}' reads {hop.entry.label}, which")
            if not filtering and self.scope(hop.entry) is not None:
                raise PermissionDenied(
                    f"'{path.dotted}' reaches {hop.entry.label}, whose rows are limited by a "
                    "row_filter; only filters may follow such a relation",
                    permission=f"{hop.entry.label} row_filter",
                )

    # Row filters ---------------------------------------------------------------------------------

    def scope(self, entry: ModelEntry) -> Q | None:
        """The Q of the rows of entry's model this user may see and change, None when unlimited."""
        return self._scope(entry)[0]

    def _scope(self, entry: ModelEntry) -> tuple[Q | None, bool]:
        if entry not in self._scopes:
            q = None if entry.row_filter is None else entry.row_filter(self.user)
            if q is not None and not isinstance(q, Q):
                raise ImproperlyConfigured(
                    f"row_filter of {entry.label} must return a Q object (Q() for every row), "
                    f"not {type(q).__name__}"
                )
            self._scopes[entry] = (q, q is not None and _joins(entry, q))
        return self._scopes[entry]

    def scoped(self, entry: ModelEntry, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The queryset limited to the user's rows.

        A row filter that joins other tables is applied as `pk IN (subquery)`: joining a to-many
        relation would repeat rows, and SELECT ... FOR UPDATE refuses the nullable side of a join.
        """
        q, joins = self._scope(entry)
        if q is None:
            return queryset
        if joins:
            return queryset.filter(pk__in=entry.model._base_manager.filter(q).values("pk"))
        return queryset.filter(q)

    def visible_pks(self, entry: ModelEntry, using: str, pks: Iterable[Any]) -> set[Any]:
        """Which of these primary keys name rows the user may see and change."""
        wanted = list(dict.fromkeys(pks))
        found: set[Any] = set()
        base = entry.model._base_manager.using(using)
        for start in range(0, len(wanted), CHECK_CHUNK):
            chunk = wanted[start : start + CHECK_CHUNK]
            found.update(self.scoped(entry, base.filter(pk__in=chunk)).values_list("pk", flat=True))
        return found

    def require_visible(self, entry: ModelEntry, using: str, pks: Iterable[Any], *, what: str) -> None:
        """PermissionDenied unless every row written (by primary key) is within the user's rows."""
        if self.scope(entry) is None:
            return
        wanted = list(dict.fromkeys(pks))
        if None in wanted:
            raise PermissionDenied(
                f"{what}: the primary keys of the rows written to {entry.label} are unknown, so its "
                "row_filter cannot be checked",
                permission=f"{entry.label} row_filter",
            )
        visible = self.visible_pks(entry, using, wanted)
        outside = [pk for pk in wanted if pk not in visible]
        if outside:
            raise PermissionDenied(
                f"{what}: {len(outside)} row(s) of {entry.label} would fall outside the rows the user "
                f"may change (row_filter), e.g. pk {outside[0]!r}",
                permission=f"{entry.label} row_filter",
            )

    def require_none_hidden(self, entry: ModelEntry, queryset: QuerySet[Any], *, what: str) -> None:
        """PermissionDenied if the queryset holds a row outside the user's rows (upsert conflicts)."""
        if self.scope(entry) is None:
            return
        hidden = queryset.exclude(pk__in=self.scoped(entry, entry.model._base_manager.all()).values("pk"))
        if hidden.exists():
            raise PermissionDenied(
                f"{what}: a row of {entry.label} with the same key exists outside the rows the user "
                "may change (row_filter)",
                permission=f"{entry.label} row_filter",
            )


def _joins(entry: ModelEntry, q: Q) -> bool:
    """Whether the row filter may need a join: a lookup that goes through a relation to another
    field, or an expression. Errs towards True, for which the subquery form is always correct;
    deciding from the Q's keys costs nothing, compiling a query for it would cost every run."""
    meta = entry.model._meta
    stack: list[Any] = [q]
    while stack:
        node = stack.pop()
        if isinstance(node, Q):
            stack.extend(node.children)
            continue
        if not isinstance(node, tuple) or not isinstance(node[0], str):
            return True  # an expression (Exists(), a lookup object): assume the worst
        first, _, rest = node[0].partition(LOOKUP_SEP)
        try:
            field = meta.get_field(first)
        except FieldDoesNotExist:
            field = None  # 'pk', an attname, an annotation: no join of their own
        if field is None or not field.is_relation:
            continue
        if not getattr(field, "concrete", False):
            return True  # reverse and many-to-many relations always join
        if rest and rest.split(LOOKUP_SEP)[0] not in _LOOKUPS:
            return True
    return False


#: Lookups that compare a foreign key's own column rather than joining its table.
_LOOKUPS = frozenset({"exact", "iexact", "in", "isnull", "gt", "gte", "lt", "lte", "range"})


def current() -> Access | None:
    """The Access of the run executing in this context, or None (trusted code)."""
    return _current.get()


@contextmanager
def active(user: Any) -> Iterator[Access | None]:
    """Activate an Access for user for the body (nothing for user=None); restores the previous one."""
    access = None if user is None else Access(user)
    token = _current.set(access)
    try:
        yield access
    finally:
        _current.reset(token)
