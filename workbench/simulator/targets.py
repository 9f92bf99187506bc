"""Who a campaign targets: the directory (IdentityInfo's latest row per enabled account), filters
by department / title / city / country / tags (AND across categories, OR within one), named
users, exclusions, CSV import, and the suggested groups "not simulated in the last 3 months"
and "repeat offenders" (mdo-reference §5.4 step 4).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from workbench.errors import InputError
from workbench.simulator.model import Recipient
from workbench.store import tables as t

SUGGESTED = ("not_recently_simulated", "repeat_offenders")
CSV_COLUMNS = {"email": "email", "name": "display_name", "displayname": "display_name", "givenname": "given_name",
               "firstname": "given_name", "department": "department", "title": "title", "jobtitle": "title",
               "manager": "manager", "company": "company", "city": "city", "country": "country",
               "timezone": "time_zone"}


@dataclass(frozen=True)
class TargetFilter:
    """A target selection; empty categories do not filter. ``all_users`` or at least one
    criterion is required."""

    all_users: bool = False
    emails: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    suggested: str = ""  # one of SUGGESTED
    limit: int | None = None  # the first N (by email) of what matches

    @property
    def empty(self) -> bool:
        return not (self.all_users or self.emails or self.departments or self.titles or self.cities
                    or self.countries or self.tags or self.suggested)


def directory(lake: Any) -> pl.DataFrame:
    """The latest directory row of every enabled account with a mail address."""
    frame = lake.scan("IdentityInfo").collect()
    if frame.is_empty():
        return frame
    frame = (frame.sort("Timestamp").group_by("AccountObjectId", maintain_order=True).last()
             .with_columns(pl.coalesce("EmailAddress", "AccountUpn").str.to_lowercase().alias("email")))
    enabled = pl.col("IsAccountEnabled").fill_null(True)
    return frame.filter(enabled & pl.col("email").str.contains("@")).unique("email", keep="last").sort("email")


def _recipient(row: dict[str, Any]) -> Recipient:
    return Recipient(email=row["email"], display_name=row.get("AccountDisplayName") or "",
                     given_name=row.get("GivenName") or "", department=row.get("Department") or "",
                     title=row.get("JobTitle") or "", manager=row.get("Manager") or "",
                     company=row.get("CompanyName") or "", city=row.get("City") or "",
                     country=row.get("Country") or "", time_zone=row.get("TimeZone") or "")


def _any_of(column: str, values: Sequence[str]) -> pl.Expr:
    wanted = [v.strip().lower() for v in values if v.strip()]
    return pl.col(column).fill_null("").str.to_lowercase().is_in(wanted)


def _tags(row_tags: Any) -> set[str]:
    if row_tags is None:
        return set()
    if isinstance(row_tags, str):
        try:
            row_tags = json.loads(row_tags)
        except ValueError:
            row_tags = [x for x in row_tags.split(",")]
    return {str(x).strip().lower() for x in row_tags if str(x).strip()}


def choices(users: pl.DataFrame) -> dict[str, list[str]]:
    """The values a target filter can pick from the *users* of :func:`directory`: departments,
    titles, cities, countries and tags, each sorted."""
    def values(column: str) -> list[str]:
        if users.is_empty() or column not in users.columns:
            return []
        return sorted({str(v) for v in users[column].drop_nulls().to_list() if str(v).strip()})
    tags = sorted({x for v in (users["Tags"].to_list() if "Tags" in users.columns else []) for x in _tags(v)})
    return {"departments": values("Department"), "titles": values("JobTitle"), "cities": values("City"),
            "countries": values("Country"), "tags": tags}


def select(lake: Any, f: TargetFilter, *, store: Any = None, now: datetime | None = None) -> list[Recipient]:
    """The directory users matching *f*, by email."""
    if f.empty:
        raise InputError("choose targets: all users, named users, a department/title/city/country/tag filter "
                         "or a suggested group")
    users = directory(lake)
    if users.is_empty():
        raise InputError("the tenant's directory (IdentityInfo) is empty; ingest or generate it first")
    cond = pl.lit(True)
    if f.emails:
        cond &= pl.col("email").is_in([e.strip().lower() for e in f.emails])
        unknown = {e.strip().lower() for e in f.emails} - set(users["email"])
        if unknown:
            raise InputError(f"{sorted(unknown)[0]} is not in the directory; check the address "
                             f"({len(unknown)} unknown in all)")
    for column, values in (("Department", f.departments), ("JobTitle", f.titles), ("City", f.cities),
                           ("Country", f.countries)):
        if values:
            cond &= _any_of(column, values)
    chosen = users.filter(cond)
    if f.tags:
        wanted = {x.strip().lower() for x in f.tags}
        chosen = chosen.filter(pl.Series([bool(_tags(v) & wanted) for v in chosen["Tags"].to_list()]))
    if f.suggested:
        if f.suggested not in SUGGESTED:
            raise InputError(f"unknown suggested group {f.suggested!r}; use one of {', '.join(SUGGESTED)}")
        if store is None:
            raise InputError(f"the suggested group {f.suggested} needs the tenant's store")
        keep = (not_recently_simulated(store, chosen["email"].to_list(), now=now) if f.suggested == SUGGESTED[0]
                else set(repeat_offenders(store)))
        chosen = chosen.filter(pl.col("email").is_in(sorted(keep)))
    if f.exclude:
        chosen = chosen.filter(~pl.col("email").is_in([e.strip().lower() for e in f.exclude]))
    if f.limit is not None:
        chosen = chosen.head(max(f.limit, 0))
    return [_recipient(r) for r in chosen.iter_rows(named=True)]


def from_csv(source: Path | str, *, lake: Any = None) -> list[Recipient]:
    """Recipients from a CSV file (or text) with an ``email`` column and optional name, department,
    title, manager, company, city, country, time zone columns; directory attributes fill the gaps."""
    text = Path(source).read_text(encoding="utf-8-sig") if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and Path(source).is_file()) else str(source)
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in [h.strip().lower() for h in reader.fieldnames]:
        raise InputError("the CSV needs a header row with an 'email' column (and optionally name, department, title)")
    known = {r.email: r for r in (select(lake, TargetFilter(all_users=True)) if lake is not None else [])}
    out: dict[str, Recipient] = {}
    for n, row in enumerate(reader, start=2):
        values = {CSV_COLUMNS[k.strip().lower().replace(" ", "").replace("_", "")]: (v or "").strip()
                  for k, v in row.items() if k and k.strip().lower().replace(" ", "").replace("_", "") in CSV_COLUMNS}
        email = values.get("email", "").lower()
        if "@" not in email:
            raise InputError(f"CSV line {n}: {email or '(empty)'!r} is not an email address")
        base = known.get(email, Recipient(email))
        out[email] = Recipient(**{**base.__dict__, **{k: v for k, v in values.items() if v}, "email": email})
    return list(out.values())


def simulated_since(store: Any, since: datetime) -> set[str]:
    """Emails targeted by a campaign launched on or after *since*."""
    c, tg = t.sim_campaigns.c, t.sim_targets.c
    with store.read() as conn:
        rows = conn.execute(sa.select(tg.email).join(t.sim_campaigns, c.id == tg.campaign_id)
                            .where(c.started >= since).distinct()).scalars().all()
    return set(rows)


def not_recently_simulated(store: Any, emails: Iterable[str], *, now: datetime | None = None,
                           days: int = 90) -> set[str]:
    """Of *emails*, those not targeted by a campaign in the last *days* (3 months)."""
    recent = simulated_since(store, (now or datetime.now(UTC)) - timedelta(days=days))
    return {e for e in emails if e not in recent}


def repeat_offenders(store: Any, threshold: int = 2) -> dict[str, int]:
    """Users compromised in at least *threshold* consecutive simulations they received (their latest
    run of compromises, newest campaigns first), with the run's length."""
    c, tg = t.sim_campaigns.c, t.sim_targets.c
    with store.read() as conn:
        rows = conn.execute(sa.select(tg.email, tg.status, c.started).join(t.sim_campaigns, c.id == tg.campaign_id)
                            .where(c.started.is_not(None), tg.status.not_in(["pending", "failed"]))
                            .order_by(tg.email, c.started.desc(), c.id.desc())).all()
    streaks: dict[str, int] = {}
    broken: set[str] = set()
    for r in rows:
        if r.email in broken:
            continue
        if r.status == "compromised":
            streaks[r.email] = streaks.get(r.email, 0) + 1
        else:
            broken.add(r.email)
    return {e: n for e, n in streaks.items() if n >= threshold}


__all__ = ["TargetFilter", "directory", "choices", "select", "from_csv", "not_recently_simulated", "repeat_offenders",
           "simulated_since", "SUGGESTED"]
