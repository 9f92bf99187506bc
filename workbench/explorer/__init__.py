"""Threat Explorer without widgets: queries as data, compiled to polars over the lake.

>>> from workbench.explorer import Query, Window, Cond, Op
>>> Query("phish", Window.last("30d"), Cond("Delivery action", Op.ANY, ("Delivered",))).to_json()["view"]
'phish'

In a notebook, ``explorer.query(...)`` returns a LazyFrame to continue in the next cell::

    lf = explorer.query(Query("phish", Window.last("90d")), tenant="demo")
    lf.group_by("SenderFromDomain").len().sort("len", descending=True).collect()
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from workbench.explorer.compile import Plan, compile_query
from workbench.explorer.properties import Kind, Property, prop, properties
from workbench.explorer.query import And, Cond, Node, Not, Op, Or, Query, Window
from workbench.explorer.views import VIEWS, View, view
from workbench.lake import Lake


def _lake(tenant: Any) -> Lake:
    if isinstance(tenant, Lake):
        return tenant
    from workbench.tenant import open_tenant

    return Lake.for_tenant(tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant))


def as_query(q: Query | dict | str) -> Query:
    """A Query from a Query, its JSON (dict or text) or an Explorer link."""
    if isinstance(q, Query):
        return q
    if isinstance(q, dict):
        return Query.from_json(q)
    text = str(q).strip()
    return Query.from_json(text) if text.startswith("{") else Query.from_link(text)


def query(q: Query | dict | str, tenant: Any = None, *, columns: Sequence[str] | None = None,
          now: datetime | None = None) -> pl.LazyFrame:
    """The rows of an Explorer query (a Query, its JSON or a link) on a tenant (name, Tenant or
    Lake; default: the default tenant) as a polars LazyFrame."""
    return compile_query(_lake(tenant), as_query(q), columns=columns, now=now)[0]


__all__ = ["query", "as_query", "compile_query", "Plan", "Query", "Window", "Cond", "Op", "And", "Or", "Not",
           "Node", "View", "VIEWS", "view", "Property", "Kind", "prop", "properties"]
