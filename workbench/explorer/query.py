"""An Explorer query as data: a view, a time window and a tree of conditions.

Conditions follow Explorer's model (mdo-reference §1.1: property, operator, values; several
values mean "any of") and add what its users miss: nested AND / OR / NOT groups, wildcards,
regular expressions, lookalike domains, and any time window. A query round-trips through
JSON and through a link, so the dashboard and incidents can open the Explorer prefilled.

>>> q = Query("phish", Window.last("7d"), And(Cond("Sender domain", "any", ("contoso.com",)),
...                                            Not(Cond("Delivery action", "any", ("Blocked",)))))
>>> Query.from_json(q.to_json()) == q
True
>>> Query.from_link(q.to_link()) == q
True
>>> Cond.of("Recipients", "any", "ann@contoso.com, bob@contoso.com").values
('ann@contoso.com', 'bob@contoso.com')
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Union

from workbench.errors import InputError


class Op(StrEnum):
    """Condition operators: Explorer's four, then ours."""

    ANY = "any"  # Equal any of
    NONE = "none"  # Equal none of
    GT = "gt"  # Greater than
    LT = "lt"  # Less than
    CONTAINS = "contains"  # substring, case-insensitive (Explorer's Subject match)
    WILDCARD = "wildcard"  # * and ?, whole value, case-insensitive
    REGEX = "regex"  # a regular expression (Rust regex syntax), searched anywhere in the value
    LOOKALIKE = "lookalike"  # domains that imitate the given ones (homoglyphs, one edit, added words)


OP_LABELS = {
    Op.ANY: "Equal any of", Op.NONE: "Equal none of", Op.GT: "Greater than", Op.LT: "Less than",
    Op.CONTAINS: "Contains", Op.WILDCARD: "Matches wildcard", Op.REGEX: "Matches regex", Op.LOOKALIKE: "Looks like",
}


def _op(value: str | Op) -> Op:
    if isinstance(value, Op):
        return value
    text = str(value).strip().lower()
    for op, label in OP_LABELS.items():
        if text in (op.value, label.lower()):
            return op
    raise InputError(f"unknown operator {value!r}; use one of: {', '.join(o.value for o in Op)}")


def split_values(text: str) -> tuple[str, ...]:
    """Explorer's comma-separated values, trimmed, empty ones dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


@dataclass(frozen=True)
class Cond:
    """``<property> <operator> <values>``; several values mean any of them."""

    property: str
    op: Op
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", _op(self.op))
        values = (self.values,) if isinstance(self.values, str) else tuple(str(v) for v in self.values)
        object.__setattr__(self, "values", values)
        if not values:
            raise InputError(f"condition on {self.property!r} has no value; give at least one (comma-separated)")

    @classmethod
    def of(cls, prop: str, op: str | Op, values: str | tuple[str, ...] | list[str]) -> Cond:
        """A condition from the panel's text box: values comma-separated."""
        return cls(prop, _op(op), split_values(values) if isinstance(values, str) else tuple(values))


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]

    def __init__(self, *items: Node) -> None:
        object.__setattr__(self, "items", tuple(items))


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]

    def __init__(self, *items: Node) -> None:
        object.__setattr__(self, "items", tuple(items))


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Cond, And, Or, Not]

_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"24h"``, ``"7d"``, ``"2w"`` → timedelta."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise InputError(f"bad duration {text!r}; write a positive number and a unit: 90m, 24h, 7d, 2w")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def _format_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    for unit, size in (("w", 7 * 1440), ("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _utc(value: datetime | date | str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"bad time {value!r}; use ISO 8601, e.g. 2026-11-01 or 2026-11-01T08:00:00Z") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """A time window: absolute (start, end) or relative (the last N minutes/hours/days/weeks).
    No horizon: any start the lake holds data for is valid."""

    start: datetime | None = None
    end: datetime | None = None
    span: timedelta | None = None  # relative: [now - span, now)

    def __post_init__(self) -> None:
        if self.span is None and self.start is None:
            raise InputError("a window needs a start (absolute) or a span (relative, e.g. last 7d)")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InputError(f"window start {self.start:%Y-%m-%d %H:%M} is not before its end; swap them")

    @classmethod
    def last(cls, span: str | timedelta) -> Window:
        return cls(span=span if isinstance(span, timedelta) else parse_duration(span))

    @classmethod
    def between(cls, start: datetime | date | str, end: datetime | date | str | None = None) -> Window:
        return cls(start=_utc(start), end=_utc(end) if end is not None else None)

    def resolve(self, now: datetime | None = None) -> tuple[datetime, datetime | None]:
        """(start, end) in UTC; a relative window ends now."""
        if self.span is not None:
            now = _utc(now) if now else datetime.now(UTC)
            return now - self.span, now
        return self.start, self.end  # type: ignore[return-value]

    def to_json(self) -> dict[str, str]:
        if self.span is not None:
            return {"last": _format_duration(self.span)}
        out = {"start": self.start.isoformat()}  # type: ignore[union-attr]
        if self.end is not None:
            out["end"] = self.end.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        if "last" in data:
            return cls.last(data["last"])
        if "start" in data:
            return cls.between(data["start"], data.get("end"))
        raise InputError('a window is {"last": "7d"} or {"start": ISO time, "end": ISO time}')


def node_to_json(node: Node) -> dict[str, Any]:
    if isinstance(node, Cond):
        return {"property": node.property, "op": node.op.value, "values": list(node.values)}
    if isinstance(node, And):
        return {"and": [node_to_json(n) for n in node.items]}
    if isinstance(node, Or):
        return {"or": [node_to_json(n) for n in node.items]}
    if isinstance(node, Not):
        return {"not": node_to_json(node.item)}
    raise InputError(f"not a condition or group: {node!r}")


def node_from_json(data: Any) -> Node:
    if not isinstance(data, dict):
        raise InputError(f"a condition is a JSON object, got {type(data).__name__}")
    if "and" in data:
        return And(*(node_from_json(n) for n in data["and"]))
    if "or" in data:
        return Or(*(node_from_json(n) for n in data["or"]))
    if "not" in data:
        return Not(node_from_json(data["not"]))
    try:
        return Cond(str(data["property"]), _op(data["op"]), tuple(data["values"]))
    except KeyError as exc:
        raise InputError(f"condition lacks {exc.args[0]!r}; write {{\"property\", \"op\", \"values\"}}") from None


@dataclass(frozen=True)
class Query:
    """A view, a window and an optional condition tree."""

    view: str = "all_email"
    window: Window = field(default_factory=lambda: Window.last("7d"))
    where: Node | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"view": self.view, "window": self.window.to_json()}
        if self.where is not None:
            out["where"] = node_to_json(self.where)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Query:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InputError(f"query is not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(data, dict):
            raise InputError("a query is a JSON object with view, window and where")
        where = data.get("where")
        return cls(view=str(data.get("view", "all_email")),
                   window=Window.from_json(data.get("window", {"last": "7d"})),
                   where=node_from_json(where) if where is not None else None)

    def to_link(self, base: str = "") -> str:
        """*base* + ``?q=<token>``: the query compressed and URL-safe encoded."""
        packed = zlib.compress(json.dumps(self.to_json(), separators=(",", ":")).encode(), 9)
        token = base64.urlsafe_b64encode(packed).decode().rstrip("=")
        return f"{base}?q={token}" if base else token

    @classmethod
    def from_link(cls, link: str) -> Query:
        """The query of a link made by :meth:`to_link` (or of its bare token)."""
        token = link.split("q=", 1)[1].split("&", 1)[0] if "q=" in link else link
        try:
            raw = zlib.decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), bufsize=65_536)
        except (ValueError, zlib.error):
            raise InputError("the Explorer link is damaged; copy it again from where it came") from None
        return cls.from_json(raw.decode())

    def narrowed(self, cond: Node) -> Query:
        """This query with *cond* ANDed in (a legend click, a drill-down)."""
        where = cond if self.where is None else And(*(self.where.items if isinstance(self.where, And) else (self.where,)), cond)
        return Query(self.view, self.window, where)


def conditions(node: Node | None) -> list[Cond]:
    """Every condition in a tree, depth first."""
    if node is None:
        return []
    if isinstance(node, Cond):
        return [node]
    if isinstance(node, Not):
        return conditions(node.item)
    return [c for n in node.items for c in conditions(n)]


__all__ = ["Op", "OP_LABELS", "Cond", "And", "Or", "Not", "Node", "Window", "Query", "conditions",
           "split_values", "parse_duration"]
