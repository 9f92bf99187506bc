"""Threat trackers: tracked-query counts and trends against an independent recount of the lake's
parquet files, the threshold alert (once per tracker and day), idempotent re-runs, permissions
and the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from workbench import audit, rbac
from workbench.cli_trackers import trackers as trackers_cli
from workbench.errors import ConflictError, InputError, NotFound, PermissionDenied
from workbench.explorer.query import Cond, Not, Query, Window
from workbench.explorer.saved import folder_of, save
from workbench.incidents.service import IncidentService
from workbench.intel import trackers as tr
from workbench.lake import Lake
from workbench.store import open_store
from workbench.store import tables as t

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # noon of the small tenant's last day
ADMIN, READER = "admin@contoso.com", "reader@contoso.com"

PHISH_NOT_BLOCKED = Query("phish", Window.last("30d"), Not(Cond("Delivery action", "any", ("Blocked",))))
PROSEWARE = Query("all_email", Window.last("7d"), Cond("Sender domain", "any", ("Proseware.com",)))


# ----------------------------------------------------------------- the independent recount


def _events(tenant) -> pl.DataFrame:
    return pl.read_parquet(Lake.for_tenant(tenant).partition_files("EmailEvents"))


def _threats() -> pl.Expr:
    return pl.col("ThreatTypes").fill_null("").str.split(",").list.eval(pl.element().str.strip_chars())


FILTERS = {  # the same conditions as the queries above, written directly over the columns
    "phish": _threats().list.contains("Phish") & (pl.col("DeliveryAction") != "Blocked"),
    "proseware": pl.col("SenderFromDomain").str.to_lowercase() == "proseware.com",
}


def recount(tenant, which: str, now: datetime) -> dict[date, int]:
    """Distinct messages per UTC day before *now*, for the last 9 days (zeros included)."""
    rows = _events(tenant).filter(FILTERS[which] & (pl.col("Timestamp") < now))
    per_day = rows.group_by(pl.col("Timestamp").dt.date().alias("d")).agg(pl.col("NetworkMessageId").n_unique())
    found = dict(per_day.iter_rows())
    today = now.date()
    return {today - timedelta(days=i): found.get(today - timedelta(days=i), 0) for i in range(9)}


def expected_trend(today: int, average: float) -> tuple[float | None, str]:
    if average == 0:
        return None, "rising" if today else "flat"
    ratio = today / average
    return ratio, "rising" if ratio >= 1.25 else "declining" if ratio <= 0.75 else "flat"


# ----------------------------------------------------------------- fixtures


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    rbac.bootstrap(s, ADMIN)
    rbac.grant(s, ADMIN, READER, rbac.Role.SECURITY_READER)
    yield s
    s.dispose()


@pytest.fixture
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


def _counts(store, name: str) -> dict[date, tuple[int, datetime]]:
    with store.read() as conn:
        rows = conn.execute(sa.select(t.tracker_counts.c.day, t.tracker_counts.c.count, t.tracker_counts.c.computed)
                            .join(t.trackers, t.trackers.c.id == t.tracker_counts.c.tracker_id)
                            .where(t.trackers.c.name == name)).all()
    return {r.day: (r.count, r.computed) for r in rows}


def _tracker_alerts(store) -> list:
    return IncidentService(store, ADMIN).alerts(policy=[tr.POLICY_ID])


# ----------------------------------------------------------------- counts and trends


def test_counts_and_trends_match_an_independent_recount(store, lake, small_tenant):
    tr.track(store, ADMIN, "Phish not blocked", PHISH_NOT_BLOCKED)
    tr.track(store, ADMIN, "Proseware", PROSEWARE, threshold=10_000)
    statuses = {s.name: s for s in tr.run(store, lake, now=NOW)}
    assert list(statuses) == ["Phish not blocked", "Proseware"]
    for name, which in (("Phish not blocked", "phish"), ("Proseware", "proseware")):
        want = recount(small_tenant, which, NOW)
        today = NOW.date()
        s = statuses[name]
        average = sum(want[today - timedelta(days=i)] for i in range(1, 8)) / 7
        ratio, label = expected_trend(want[today], average)
        assert want[today] > 0 and want[today - timedelta(days=1)] > 0  # the data exercises the counts
        assert (s.today, s.prior_day) == (want[today], want[today - timedelta(days=1)])
        assert s.prior_week_average == pytest.approx(average, abs=1e-4)
        assert s.trend.label == label and s.trend.ratio == pytest.approx(ratio, abs=1e-3)
        assert s.last_run == NOW and not s.crossed and s.alert_id is None
        assert {d: n for d, (n, _) in _counts(store, name).items()} == want  # today and the 8 days before
        assert s.explore.where == (PHISH_NOT_BLOCKED if which == "phish" else PROSEWARE).where
    assert [k.last_run for k in tr.list_trackers(store)] == [NOW, NOW]


def test_only_days_not_counted_to_their_end_are_recounted(store, lake, small_tenant):
    tr.track(store, ADMIN, "Proseware", PROSEWARE)
    first = NOW - timedelta(days=1)  # noon of the 19th: the 19th is counted only up to noon
    [s1] = tr.run(store, lake, now=first)
    assert s1.today == recount(small_tenant, "proseware", first)[first.date()]
    before = _counts(store, "Proseware")
    [s2] = tr.run(store, lake, now=NOW)
    after = _counts(store, "Proseware")
    want = recount(small_tenant, "proseware", NOW)
    assert s2.prior_day == want[date(2026, 11, 19)] > s1.today  # the partial day was counted again
    assert after[date(2026, 11, 19)][1] == NOW
    finished = [date(2026, 11, d) for d in range(11, 19)]
    assert [after[d] for d in finished] == [before[d] for d in finished]  # finished days are kept, not recounted
    assert {d: n for d, (n, _) in after.items() if d >= date(2026, 11, 12)} == want


def test_trend_rule():
    assert tr.trend_of(5, 4.0) == tr.Trend(1.25, "rising")
    assert tr.trend_of(3, 4.0) == tr.Trend(0.75, "declining")
    assert tr.trend_of(4, 4.0).label == tr.trend_of(4, 3.5).label == "flat"
    assert tr.trend_of(1, 0.0) == tr.Trend(None, "rising")
    assert tr.trend_of(0, 0.0) == tr.Trend(None, "flat")


# ----------------------------------------------------------------- the threshold alert


def test_threshold_alert_is_raised_once_per_tracker_and_day(store, lake, small_tenant):
    today = recount(small_tenant, "phish", NOW)[NOW.date()]
    tr.track(store, ADMIN, "Phish not blocked", PHISH_NOT_BLOCKED, threshold=today)  # reached exactly
    proseware = recount(small_tenant, "proseware", NOW)[NOW.date()]
    tr.track(store, ADMIN, "Quiet", PROSEWARE, threshold=proseware + 1)  # one short
    statuses = {s.name: s for s in tr.run(store, lake, now=NOW)}
    assert statuses["Phish not blocked"].crossed and statuses["Phish not blocked"].alert_id
    assert not statuses["Quiet"].crossed and statuses["Quiet"].alert_id is None
    [alert] = _tracker_alerts(store)
    assert alert.id == statuses["Phish not blocked"].alert_id and alert.message_count == today
    assert "Phish not blocked" in alert.title
    with store.read() as conn:
        row = conn.execute(sa.select(t.alerts).where(t.alerts.c.id == alert.id)).one()
    q = Query.from_json(json.loads(row.explorer_query))
    assert q.where == PHISH_NOT_BLOCKED.where and q.view == "phish"
    assert q.window.resolve() == (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))

    counts = _counts(store, "Phish not blocked")
    later = NOW + timedelta(hours=1)
    again = {s.name: s for s in tr.run(store, lake, now=later)}
    assert again["Phish not blocked"].crossed and again["Phish not blocked"].alert_id is None
    quiet = again["Quiet"]  # reaching the threshold later in the day files its alert then
    assert quiet.today == recount(small_tenant, "proseware", later)[NOW.date()]
    assert quiet.crossed == (quiet.today >= proseware + 1) == (quiet.alert_id is not None)
    phish_alerts = [a for a in _tracker_alerts(store) if "Phish not blocked" in a.title]
    assert [a.id for a in phish_alerts] == [alert.id]  # re-running the same day files nothing new
    assert {d: c for d, c in _counts(store, "Phish not blocked").items() if d < NOW.date()} == \
        {d: c for d, c in counts.items() if d < NOW.date()}  # and recounts only today
    filed = len(_tracker_alerts(store))
    assert len(tr.run(store, lake, now=later)) == 2 and len(_tracker_alerts(store)) == filed

    [next_day] = [s for s in tr.run(store, lake, now=NOW + timedelta(days=1)) if s.name == "Phish not blocked"]
    assert next_day.today == 0 and not next_day.crossed and len(_tracker_alerts(store)) == filed


def test_rerun_is_idempotent(store, lake):
    tr.track(store, ADMIN, "Phish not blocked", PHISH_NOT_BLOCKED)
    first = tr.run(store, lake, now=NOW)
    counts = _counts(store, "Phish not blocked")
    second = tr.run(store, lake, now=NOW)
    assert first == second and _counts(store, "Phish not blocked") == counts


# ----------------------------------------------------------------- management and permissions


def test_management_is_audited_and_checked(store, tmp_path):
    tr.track(store, ADMIN, "Proseware", PROSEWARE, threshold=5)
    with pytest.raises(ConflictError):
        tr.track(store, ADMIN, "proseware", PROSEWARE)
    for bad in (0, -1, 2.5):
        with pytest.raises(InputError):
            tr.track(store, ADMIN, "Bad", PROSEWARE, threshold=bad)
    for where in (Cond("No such property", "any", ("x",)), Cond("Delivery action", "any", ("Teleported",))):
        with pytest.raises(InputError):
            tr.track(store, ADMIN, "Bad", Query("all_email", Window.last("1d"), where))
    save(folder_of(str(tmp_path)), "Phish weekly", PHISH_NOT_BLOCKED, author=ADMIN)
    k = tr.track_saved(store, ADMIN, tmp_path, "phish weekly", threshold=3)
    assert (k.name, k.query, k.threshold, k.created_by) == ("Phish weekly", PHISH_NOT_BLOCKED, 3, ADMIN)
    assert tr.tracked_names(store) == {"proseware", "phish weekly"}
    tr.untrack(store, ADMIN, "PROSEWARE")
    with pytest.raises(NotFound):
        tr.untrack(store, ADMIN, "Proseware")
    assert [k.name for k in tr.list_trackers(store)] == ["Phish weekly"]
    made = audit.query(store, activity="tracker.", newest_first=False)
    assert [(r.activity, r.target, r.actor, r.result.value) for r in made] == [
        ("tracker.create", "Proseware", ADMIN, "ok"), ("tracker.create", "Phish weekly", ADMIN, "ok"),
        ("tracker.remove", "Proseware", ADMIN, "ok")]


def test_security_reader_may_not_manage_trackers_but_runs_need_no_role(store, lake):
    with pytest.raises(PermissionDenied):
        tr.track(store, READER, "Mine", PROSEWARE)
    tr.track(store, ADMIN, "Proseware", PROSEWARE)
    with pytest.raises(PermissionDenied):
        tr.untrack(store, READER, "Proseware")
    denied = audit.query(store, user=READER, result="denied", newest_first=False)
    assert [(r.activity, r.target) for r in denied] == [("tracker.create", "Mine"), ("tracker.remove", "Proseware")]
    assert [k.name for k in tr.list_trackers(store)] == ["Proseware"]
    assert [s.name for s in tr.run(store, lake, now=NOW)] == ["Proseware"]


# ----------------------------------------------------------------- CLI


def test_cli_add_list_run_remove(small_tenant, tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    rbac.bootstrap(open_store(url=db), ADMIN)
    copy = tmp_path / "small"  # the saved query is written into a copy of the tenant
    shutil.copytree(small_tenant.root, copy, ignore=shutil.ignore_patterns("workbench.sqlite*"))
    save(folder_of(str(copy)), "Proseware mail", PROSEWARE, author=ADMIN)
    runner = CliRunner(env={"WORKBENCH_USER": ADMIN})
    common = ["--tenant", str(copy), "--db", db]

    def invoke(*args: str, user: str = ADMIN):
        return runner.invoke(trackers_cli, [*args, *common], env={"WORKBENCH_USER": user}, catch_exceptions=False)

    want = recount(small_tenant, "phish", NOW)[NOW.date()]
    added = invoke("add", "Phish not blocked", "--query-link", PHISH_NOT_BLOCKED.to_link("https://wb/explorer"),
                   "--threshold", str(want))
    assert added.exit_code == 0, added.output
    assert invoke("add", "Proseware", "--query-link", json.dumps(PROSEWARE.to_json())).exit_code == 0
    assert invoke("add", "Saved proseware", "--saved", "proseware mail").exit_code == 0
    both = invoke("add", "X", "--query-link", "{}", "--saved", "y")
    assert both.exit_code != 0 and "--saved or --query-link" in both.output
    denied = invoke("add", "Mine", "--query-link", json.dumps(PROSEWARE.to_json()), user=READER)
    assert denied.exit_code != 0 and "error:" in denied.output

    listed = invoke("list")
    assert listed.exit_code == 0 and "Phish not blocked" in listed.output and "Proseware" in listed.output

    ran = invoke("run", "--now", NOW.isoformat())
    assert ran.exit_code == 0, ran.output
    line = next(x for x in ran.output.splitlines() if x.startswith("Phish not blocked"))
    assert line.split()[3:5] == [str(want), str(recount(small_tenant, "phish", NOW)[date(2026, 11, 19)])]
    assert "1 threshold alert(s) filed" in ran.output

    assert invoke("remove", "Proseware").exit_code == 0
    assert "Proseware" not in invoke("list").output
    missing = invoke("remove", "Proseware")
    assert missing.exit_code != 0 and "no tracker" in missing.output
