"""A :class:`~workbench.explorer.query.Query` → a polars LazyFrame over the lake.

Only the window's day partitions and the columns the query needs are read (partition and
projection pushdown); conditions on the view's own table become one filter expression that
polars pushes into the parquet scan. A condition on another table (a URL, an attachment, a
click, a post-delivery action, a recipient tag, a user report) reads that table for the
same window, keeps the message keys that satisfy it, and joins them back as a flag, so
AND / OR / NOT work across tables; tables no condition names are never read.

>>> from workbench.explorer.query import Cond, Op
>>> import polars as pl
>>> frame = pl.DataFrame({"SenderFromDomain": ["contoso.com", "c0ntoso.com", "fabrikam.com"]})
>>> frame.filter(condition_expr(Cond("Sender domain", Op.ANY, ("CONTOSO.com",)), "EmailEvents")).height
1
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from workbench import schema
from workbench.errors import InputError
from workbench.explorer.properties import Kind, Property, Shape, prop
from workbench.explorer.query import And, Cond, Node, Not, Op, Query, conditions
from workbench.explorer.views import View, view
from workbench.lake import Lake

_LIST_SHAPES = (Shape.COMMA_LIST, Shape.JSON_LISTS, Shape.JSON_ARRAY)


@dataclass(frozen=True)
class Link:
    """How rows of another table belong to a row of the view's table: (view column, other
    column expression) pairs, and a filter on the other table."""

    keys: tuple[tuple[str, pl.Expr], ...]
    where: pl.Expr | None = None
    windowed: bool = True  # read the other table for the query window (not for the directory)
    latest: bool = False  # keep the latest row per key (directory snapshots)


def _lower(column: str) -> pl.Expr:
    return pl.col(column).str.to_lowercase()


LINKS: dict[tuple[str, str], Link] = {
    ("EmailEvents", "EmailUrlInfo"): Link((("NetworkMessageId", pl.col("NetworkMessageId")),)),
    ("EmailEvents", "EmailAttachmentInfo"): Link((("NetworkMessageId", pl.col("NetworkMessageId")),
                                                  ("RecipientEmailAddress", _lower("RecipientEmailAddress")))),
    ("EmailEvents", "EmailPostDeliveryEvents"): Link((("NetworkMessageId", pl.col("NetworkMessageId")),
                                                      ("RecipientEmailAddress", _lower("RecipientEmailAddress")))),
    ("EmailEvents", "UrlClickEvents"): Link((("NetworkMessageId", pl.col("NetworkMessageId")),
                                             ("RecipientEmailAddress", _lower("AccountUpn")))),
    ("EmailEvents", "AlertEvidence"): Link((("NetworkMessageId", pl.col("NetworkMessageId")),)),
    ("EmailEvents", "IdentityInfo"): Link((("RecipientEmailAddress", _lower("EmailAddress")),),
                                          windowed=False, latest=True),
    ("EmailEvents", "CloudAppEvents"): Link(
        (("NetworkMessageId", pl.col("ObjectId")),
         ("RecipientEmailAddress", pl.col("RawEventData").str.json_path_match("$.UserId").str.to_lowercase())),
        where=pl.col("ActionType") == "UserSubmission"),
    ("UrlClickEvents", "IdentityInfo"): Link((("AccountUpn", _lower("EmailAddress")),), windowed=False, latest=True),
}

# View columns that are compared lower-cased when joined (stored addresses may be mixed case).
_LOWERED_KEYS = {"RecipientEmailAddress", "AccountUpn"}


def _link(view_table: str, other: str) -> Link:
    try:
        return LINKS[(view_table, other)]
    except KeyError:
        raise InputError(f"{other} cannot be related to rows of {view_table}; pick a property of {view_table}") from None


# --------------------------------------------------------------------------- conditions


def _values(p: Property, c: Cond) -> list:
    """The condition's values, checked and typed for the property."""
    if p.kind is Kind.INT:
        try:
            return [int(v) for v in c.values]
        except ValueError:
            raise InputError(f"{p.label} takes whole numbers; got {', '.join(c.values)}") from None
    if p.kind is Kind.BOOL:
        truth = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        try:
            return [truth[v.lower()] for v in c.values]
        except KeyError:
            raise InputError(f"{p.label} is true or false; got {', '.join(c.values)}") from None
    if p.kind is Kind.ENUM and c.op in (Op.ANY, Op.NONE):
        unknown = [v for v in c.values if p.canonical(v) not in p.values]
        if unknown:
            raise InputError(f"{unknown[0]!r} is not a {p.label} value; choose from: {', '.join(p.values)}")
        return [p.canonical(v) for v in c.values]
    return list(c.values)


def _wildcard(pattern: str) -> str:
    return "(?i)^" + "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern) + "$"


def _checked_regex(pattern: str, label: str) -> str:
    try:
        pl.Series([""]).str.contains(pattern)
    except pl.exceptions.ComputeError as exc:
        reason = str(exc).strip().splitlines()[-1][:120]
        raise InputError(f"bad regular expression {pattern!r} for {label} ({reason}); fix the pattern") from None
    return pattern


def _match(p: Property, op: Op, values: list, element: pl.Expr) -> pl.Expr:
    """True where *element* (one value) satisfies ``op values`` (NONE is handled by the caller)."""
    if p.kind in (Kind.INT, Kind.BOOL):
        if op is Op.GT:
            return element > max(values)
        if op is Op.LT:
            return element < min(values)
        return element.is_in(values)
    if op is Op.ANY:
        if p.kind is Kind.ENUM or not p.case_insensitive:
            return element.is_in(values)
        if p.stored_lower:
            return element.is_in([v.lower() for v in values])
        return element.str.to_lowercase().is_in([v.lower() for v in values])
    if op is Op.CONTAINS:
        if all(v.isascii() for v in values):
            return element.str.contains_any(values, ascii_case_insensitive=True)
        return element.str.to_lowercase().str.contains_any([v.lower() for v in values])
    if op is Op.WILDCARD:
        return element.str.contains("|".join(f"(?:{_wildcard(v)})" for v in values))
    if op is Op.REGEX:
        return element.str.contains("|".join(f"(?:{_checked_regex(v, p.label)})" for v in values))
    raise InputError(f"operator {op.value} does not apply to {p.label}")


def _positive(p: Property, c: Cond, lookalikes: dict[Cond, list[str]]) -> pl.Expr:
    """The condition with NONE read as ANY (the caller negates)."""
    if c.op not in p.operators:
        raise InputError(f"{p.label} does not take {c.op.value!r}; use one of: {', '.join(o.value for o in p.operators)}")
    op = Op.ANY if c.op is Op.NONE else c.op
    if op is Op.LOOKALIKE:
        values, op = lookalikes.get(c, []), Op.ANY
    else:
        values = _values(p, c)
    value = p.value()
    if p.shape in _LIST_SHAPES:
        return value.list.eval(_match(p, op, values, pl.element())).list.any().fill_null(False)
    return _match(p, op, values, value).fill_null(False)


def condition_expr(c: Cond, table: str, lookalikes: dict[Cond, list[str]] | None = None) -> pl.Expr:
    """A boolean expression over *table*'s columns for one condition on one of its properties."""
    p = prop(c.property, table)
    if p.table != table:
        raise InputError(f"{p.label} lives in {p.table}; compile the whole query to join it")
    expr = _positive(p, c, lookalikes or {})
    return ~expr if c.op is Op.NONE else expr


# --------------------------------------------------------------------------- the query


@dataclass(frozen=True)
class Plan:
    """What compiling a query decided: handy in tests and in the panel's "query details"."""

    view: View
    start: datetime
    end: datetime | None
    tables: tuple[str, ...]  # every table read
    columns: tuple[str, ...]  # columns read from the view's table


def _lookalike_domains(lake: Lake, v: View, c: Cond, p: Property, start: datetime, end: datetime | None) -> list[str]:
    """Values of *p* in the window that imitate one of the condition's domains."""
    from workbench.detect.analyzers.lookalike import imitates

    table_start = start if _windowed(v, p) else None
    frame = lake.scan(p.table, table_start, end if table_start else None, columns=list(p.columns))
    seen = frame.select(p.value().alias("v")).unique().collect()["v"]
    targets = [t.lower() for t in c.values]
    return [d for d in seen.drop_nulls().to_list() if any(imitates(d, t) for t in targets)]


def _windowed(v: View, p: Property) -> bool:
    return p.table == v.table or _link(v.table, p.table).windowed


def _other_keys(lake: Lake, v: View, p: Property, cond_expr: pl.Expr, start: datetime, end: datetime | None,
                flag: str) -> pl.LazyFrame:
    """Keys (view columns) of rows of *p*'s table that satisfy *cond_expr*, with a True *flag*."""
    link = _link(v.table, p.table)
    frame = lake.scan(p.table, start if link.windowed else None, None)  # related events may come after the window
    if link.where is not None:
        frame = frame.filter(link.where)
    if link.latest:
        frame = frame.sort("Timestamp").group_by([expr for _, expr in link.keys]).last()
        keys = frame.filter(cond_expr).select([pl.col(expr.meta.output_name()).alias(name) for name, expr in link.keys])
    else:
        keys = frame.filter(cond_expr).select([expr.alias(name) for name, expr in link.keys])
    return keys.unique().with_columns(pl.lit(True).alias(flag))


def compile_query(lake: Lake, query: Query, *, columns: Sequence[str] | None = None,
                  now: datetime | None = None) -> tuple[pl.LazyFrame, Plan]:
    """The query's rows (the view's table, *columns* or the view's default columns) and its plan."""
    v = view(query.view)
    start, end = query.window.resolve(now)
    parts = [n for n in (v.base, query.where) if n is not None]
    tree: Node | None = parts[0] if len(parts) == 1 else And(*parts) if parts else None
    table_schema = schema.table(v.table).schema
    wanted = list(columns) if columns is not None else list(v.columns)
    unknown = [c for c in wanted if c not in table_schema]
    if unknown:
        raise InputError(f"{v.table} has no column {unknown[0]!r}; valid columns: {', '.join(table_schema.names())}")

    conds = conditions(tree)
    props = {c: prop(c.property, v.table) for c in conds}
    lookalikes = {c: _lookalike_domains(lake, v, c, props[c], start, end) for c in conds if c.op is Op.LOOKALIKE}
    needed = set(wanted)
    flags: dict[Cond, str] = {}
    others: list[tuple[pl.LazyFrame, list[str]]] = []
    tables = [v.table]
    for i, c in enumerate(conds):
        p = props[c]
        if p.table == v.table:
            needed.update(p.columns)
            continue
        link = _link(v.table, p.table)
        flag = f"__cond{i}"
        flags[c] = flag
        needed.update(name for name, _ in link.keys)
        others.append((_other_keys(lake, v, p, _positive(p, c, lookalikes), start, end, flag),
                       [name for name, _ in link.keys]))
        if p.table not in tables:
            tables.append(p.table)

    frame = lake.scan(v.table, start, end, columns=[c for c in table_schema.names() if c in needed])
    for keys, on in others:
        lowered = [k for k in on if k in _LOWERED_KEYS]
        if lowered:
            frame = frame.with_columns([pl.col(k).str.to_lowercase().alias(f"__key_{k}") for k in lowered])
            keys = keys.rename({k: f"__key_{k}" for k in lowered})
            on = [f"__key_{k}" if k in lowered else k for k in on]
        frame = frame.join(keys, on=on, how="left").drop([k for k in on if k.startswith("__key_")])

    if tree is not None:
        frame = frame.filter(_tree_expr(tree, v, flags, lookalikes))
    frame = frame.select(wanted)
    return frame, Plan(v, start, end, tuple(tables), tuple(c for c in table_schema.names() if c in needed))


def _tree_expr(node: Node, v: View, flags: dict[Cond, str], lookalikes: dict[Cond, list[str]]) -> pl.Expr:
    if isinstance(node, Cond):
        if node in flags:
            hit = pl.col(flags[node]).fill_null(False)
            return ~hit if node.op is Op.NONE else hit
        return condition_expr(node, v.table, lookalikes)
    if isinstance(node, Not):
        return ~_tree_expr(node.item, v, flags, lookalikes)
    exprs = [_tree_expr(n, v, flags, lookalikes) for n in node.items]
    if not exprs:
        return pl.lit(True)
    return pl.all_horizontal(exprs) if isinstance(node, And) else pl.any_horizontal(exprs)


def query(lake: Lake, q: Query, *, columns: Sequence[str] | None = None, now: datetime | None = None) -> pl.LazyFrame:
    """The rows of *q* as a LazyFrame to continue in code (filters and columns push down)."""
    return compile_query(lake, q, columns=columns, now=now)[0]


__all__ = ["compile_query", "query", "condition_expr", "Plan", "LINKS", "Link"]
