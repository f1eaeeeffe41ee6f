"""Hot reads compiled once per database connection instead of at every call.

Building a query's SQL costs the ORM more than running it: for the order a buyer polls
(an order with its listing, brand and seller) compiling takes about 0.55 ms of the 1.0 ms a
``get()`` costs on PostgreSQL, and a purchase runs such reads a dozen times
(docs/benchmarks.md). A :class:`PreparedRead` builds its queryset once per connection with
stand-in values, keeps the SQL and what the ORM needs to turn rows into models, and then
only binds the real values, runs the statement and builds the objects as ``ModelIterable``
does (database converters, ``select_related`` populators, annotations).

Only what can be proved to bind the same way is accepted, and that is checked when the read
is first compiled — twice, with two sets of stand-ins, so the SQL must not change with the
values and a constant that equals a stand-in is told apart: every keyword must reach the
SQL as one plain parameter (equality
lookups; ``__contains`` or another transformed value is refused), and the queryset yields
models, ``values()`` dicts or ``values_list()`` tuples (flat or not) — no named tuples, no
``prefetch_related``. A plan is kept per connection object, so threads never share a
compiler or a converter bound to another connection.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models import QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.db.transaction import TransactionManagementError

#: stand-in integers: in range for every integer column, small ones included (an
#: out-of-range integer makes the ORM drop the lookup altogether); each read is compiled with
#: two sets of stand-ins, so a constant that happens to equal one is told apart
_INT_BASE = 30_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _stand_in(kind: type, index: int, name: str, variant: int):
    if kind is int:
        return _INT_BASE + 1000 * variant + index
    if kind is str:
        return f"\ue000prepared{variant}:{name}\ue001"
    raise ImproperlyConfigured(f"prepared reads bind int or str values, not {kind.__name__}")


_SHAPES = {
    ModelIterable: "models",
    ValuesIterable: "dicts",
    ValuesListIterable: "tuples",
    FlatValuesListIterable: "flat",
}


@dataclass(frozen=True)
class _Plan:
    sql: str
    slots: tuple  # per SQL parameter: a keyword's name, or (constant,) kept from the build
    shape: str  # one of _SHAPES' values
    converters: tuple  # (position, converter functions, expression)
    col_count: int | None  # rows are cut to this many columns (ORDER BY extras), or None
    for_update: bool
    names: tuple[str, ...] = ()  # a dict's keys
    model: type | None = None
    init_list: tuple[str, ...] = ()
    model_slice: slice | None = None
    populators: tuple = ()
    annotations: tuple[tuple[str, int], ...] = ()


class PreparedRead:
    """``build(**values)`` returns the queryset; ``kinds`` names each keyword's type (int or
    str). Values are coerced to that type, as the ORM's lookups would."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type):
        self._build = build
        self._kinds = kinds
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._exists: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._model: type | None = None
        self._for_update = False

    def all(self, **values) -> list:
        using = self._using()
        connection = connections[using]
        plan = self._plans.get(connection) or self._compile(connection)
        if plan.for_update and connection.get_autocommit():
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = self._params(plan.slots, values)
        if params is None:
            return []
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            rows = cursor.fetchall()
        return [_value(plan, connection, using, row) for row in rows]

    def get(self, **values):
        """The one row, or the model's DoesNotExist / MultipleObjectsReturned, as ``get()``."""
        found = self.all(**values)
        if len(found) == 1:
            return found[0]
        model = self._model
        if not found:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        raise model.MultipleObjectsReturned(
            f"get() returned more than one {model._meta.object_name} -- it returned {len(found)}!"
        )

    def first(self, **values):
        """The first row of the read as built, or None: give the queryset the order and the
        ``[:1]`` that ``first()`` would, or every row is fetched."""
        found = self.all(**values)
        return found[0] if found else None

    def exists(self, **values) -> bool:
        """Whether any row matches, as ``exists()`` asks it (``SELECT 1 … LIMIT 1``)."""
        connection = connections[self._using()]
        found = self._exists.get(connection)
        if found is None:

            def compiled(variant: int):
                queryset = self._build(**self._stand_ins(variant)).using(connection.alias)
                query = queryset.query.exists(limit=True)
                return query.get_compiler(connection=connection).as_sql()

            (sql, params), second = compiled(0), compiled(1)
            found = self._exists[connection] = (sql, self._slots(sql, params, second))
        sql, slots = found
        params = self._params(slots, values)
        if params is None:
            return False
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None

    def _params(self, slots: tuple, values: dict) -> list | None:
        """The statement's parameters; None when an integer is beyond any integer column, so
        nothing can match (the ORM, too, answers such a lookup with no rows)."""
        params = [
            self._kinds[slot](values[slot]) if isinstance(slot, str) else slot[0] for slot in slots
        ]
        if any(type(p) is int and not _INT64_MIN <= p <= _INT64_MAX for p in params):
            return None
        return params

    def _slots(self, sql: str, params, second: tuple[str, Any]) -> tuple:
        """Which parameter is which keyword, from two compiles with different stand-ins:
        the same SQL, each keyword's stand-in at the same places, the rest the same."""
        first_ins, second_ins = self._stand_ins(0), self._stand_ins(1)
        second_sql, second_params = second
        if second_sql != sql or len(second_params) != len(params):
            raise ImproperlyConfigured("the read's SQL changes with its values: not preparable")
        slots = []
        for one, other in zip(params, second_params, strict=True):
            name = _name_of(one, first_ins)
            if name is not None and _name_of(other, second_ins) == name:
                slots.append(name)
            elif type(one) is type(other) and one == other:
                slots.append((one,))
            else:
                raise ImproperlyConfigured(
                    "a value must reach the SQL as a plain parameter (equality lookups)"
                )
        missing = set(first_ins) - {slot for slot in slots if isinstance(slot, str)}
        if missing:
            raise ImproperlyConfigured(
                f"{sorted(missing)} must reach the SQL as plain parameters (equality lookups)"
            )
        return tuple(slots)

    def _using(self) -> str:
        if self._model is None:  # the shape (model, locking) without compiling anything
            shape = self._build(**self._stand_ins(0))
            self._model, self._for_update = shape.model, bool(shape.query.select_for_update)
        if self._for_update:
            return router.db_for_write(self._model)
        return router.db_for_read(self._model)

    def _stand_ins(self, variant: int) -> dict[str, Any]:
        return {
            name: _stand_in(kind, index, name, variant)
            for index, (name, kind) in enumerate(self._kinds.items())
        }

    def _compile(self, connection) -> _Plan:
        queryset = self._build(**self._stand_ins(0)).using(connection.alias)
        shape = _SHAPES.get(queryset._iterable_class)
        if shape is None or queryset._prefetch_related_lookups or queryset._known_related_objects:
            raise ImproperlyConfigured(
                "a prepared read yields models, dicts or tuples: no named tuples, "
                "prefetch_related() or related managers"
            )
        query = queryset.query
        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        second = (
            self._build(**self._stand_ins(1))
            .using(connection.alias)
            .query.get_compiler(connection=connection)
            .as_sql()
        )
        select = compiler.select
        fields = [column[0] for column in select[: compiler.col_count]]
        common = {
            "sql": sql,
            "slots": self._slots(sql, params, second),
            "shape": shape,
            "converters": tuple(
                (position, tuple(functions), expression)
                for position, (functions, expression) in compiler.get_converters(fields).items()
            ),
            "col_count": compiler.col_count if compiler.has_extra_select else None,
            "for_update": bool(query.select_for_update),
        }
        if shape == "dicts":
            names = query.selected or [
                *query.extra_select,
                *query.values_select,
                *query.annotation_select,
            ]
            plan = _Plan(**common, names=tuple(names))
        elif shape == "models":
            klass_info = compiler.klass_info
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            plan = _Plan(
                **common,
                model=klass_info["model"],
                init_list=tuple(column[0].target.attname for column in select[start:end]),
                model_slice=slice(start, end),
                populators=tuple(get_related_populators(klass_info, select, connection.alias)),
                annotations=tuple((compiler.annotation_col_map or {}).items()),
            )
        else:
            plan = _Plan(**common)
        self._plans[connection] = plan
        return plan


def _name_of(param, stand_ins: dict[str, Any]) -> str | None:
    for name, value in stand_ins.items():
        if type(param) is type(value) and param == value:
            return name
    return None


def _value(plan: _Plan, connection, using: str, row):
    """One row as the ORM's iterable for the queryset's shape would give it."""
    if plan.col_count is not None:
        row = row[: plan.col_count]
    if plan.converters:
        row = list(row)
        for position, functions, expression in plan.converters:
            value = row[position]
            for convert in functions:
                value = convert(value, expression, connection)
            row[position] = value
    if plan.shape == "flat":
        return row[0]
    if plan.shape == "tuples":
        return tuple(row)
    if plan.shape == "dicts":
        return dict(zip(plan.names, row, strict=False))
    obj = plan.model.from_db(using, plan.init_list, row[plan.model_slice])
    for populator in plan.populators:
        populator.populate(row, obj)
    for name, position in plan.annotations:
        setattr(obj, name, row[position])
    return obj


def attach_prefetched(instance, related_name: str, objects: list, back_name: str = "") -> None:
    """Give ``instance`` its reverse relation ``related_name`` as ``prefetch_related`` would
    (``instance.<related_name>.all()`` then runs no query), each object pointing back to it
    through ``back_name`` when given."""
    manager = getattr(instance, related_name)
    queryset = manager.get_queryset()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    if back_name:
        for obj in objects:
            setattr(obj, back_name, instance)
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[related_name] = queryset
