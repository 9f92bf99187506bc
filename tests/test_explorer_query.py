"""Explorer without widgets: every answer is checked against an independent polars computation
over the same lake files, on the small generated tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench.detect.analyzers.lookalike import imitates
from workbench.errors import ConflictError, InputError, NotFound
from workbench.explorer import And, Cond, Not, Op, Or, Query, Window, as_query, compile_query, query
from workbench.explorer import aggregate as agg
from workbench.explorer.actions import ActionKind, MessageRef, build_request
from workbench.explorer.entity import email_entity
from workbench.explorer.export import export
from workbench.explorer.saved import delete, list_saved, load, save
from workbench.lake import Lake
from workbench.mail.embedded import EmbeddedMailStore

WINDOW = Window.between("2026-11-17", "2026-11-21")  # the small tenant's 3 days, with margin


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


def table(lake: Lake, name: str) -> pl.DataFrame:
    """The whole table, read directly from its parquet files (not through the Explorer)."""
    return pl.read_parquet(lake.partition_files(name)) if lake.partition_files(name) else pl.DataFrame()


@pytest.fixture(scope="module")
def events(lake) -> pl.DataFrame:
    return table(lake, "EmailEvents")


def keys(frame: pl.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["NetworkMessageId"], frame["RecipientEmailAddress"]))


def run(lake: Lake, where=None, view: str = "all_email") -> pl.DataFrame:
    return query(Query(view, WINDOW, where), lake, columns=["NetworkMessageId", "RecipientEmailAddress"]).collect()


# ----------------------------------------------------------------------------- model


def test_query_round_trips_through_json_and_links():
    q = Query("phish", Window.last("36h"), And(Or(Cond("sender_domain", Op.WILDCARD, ("*.example.com",)),
                                                   Cond("subject", Op.CONTAINS, ("invoice", "payment"))),
                                                Not(Cond("Delivery action", "Equal any of", ("Blocked",)))))
    assert Query.from_json(q.to_json()) == q
    assert as_query(q.to_link("http://127.0.0.1:8866/voila/render/Explorer.ipynb")) == q
    assert q.to_json()["window"] == {"last": "36h"}
    assert Query.from_json('{"view": "malware", "window": {"start": "2026-11-01", "end": "2026-11-02"}}').window.start \
        == datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize("make, message", [
    (lambda: Query.from_link("not-a-link"), "damaged"),
    (lambda: Window.last("7 parsecs"), "bad duration"),
    (lambda: Window.between("2026-11-02", "2026-11-01"), "not before its end"),
    (lambda: Cond("subject", "resembles", ("x",)), "unknown operator"),
    (lambda: Cond("subject", Op.ANY, ()), "no value"),
    (lambda: Query.from_json("{oops"), "not valid JSON"),
])
def test_bad_query_input_is_a_one_line_error(make, message):
    with pytest.raises(InputError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("where, message", [
    (Cond("colour", Op.ANY, ("red",)), "unknown property 'colour'"),
    (Cond("delivery_action", Op.ANY, ("Vaporised",)), "not a Delivery action value; choose from: Delivered"),
    (Cond("subject", Op.REGEX, ("(unclosed",)), "bad regular expression"),
    (Cond("email_size", Op.GT, ("big",)), "whole numbers"),
    (Cond("subject", Op.GT, ("3",)), "Subject does not take 'gt'"),
    (Cond("delivery_action", Op.LOOKALIKE, ("x.com",)), "does not take 'lookalike'"),
])
def test_bad_conditions_name_the_problem(lake, where, message):
    with pytest.raises(InputError, match=message):
        run(lake, where)


# ----------------------------------------------------------------------------- answers


def test_views_select_what_they_say(lake, events):
    phish = events.filter(pl.col("ThreatTypes").str.contains("Phish"))
    malware = events.filter(pl.col("ThreatTypes").str.contains("Malware"))
    assert keys(run(lake, view="phish")) == keys(phish) and phish.height > 0
    assert keys(run(lake, view="malware")) == keys(malware)
    assert keys(run(lake, view="campaigns")) == keys(phish) | keys(malware)
    assert run(lake).height == events.height


def test_base_conditions_match_independent_filters(lake, events):
    domain = events["SenderFromDomain"].drop_nulls().mode()[0]
    cases = [
        (Cond("sender_domain", Op.ANY, (domain.upper(),)), pl.col("SenderFromDomain").str.to_lowercase() == domain),
        (Cond("sender_domain", Op.NONE, (domain,)), pl.col("SenderFromDomain").fill_null("") != domain),
        (Cond("subject", Op.CONTAINS, ("INVOICE",)), pl.col("Subject").str.to_lowercase().str.contains("invoice", literal=True)),
        (Cond("sender_ip", Op.WILDCARD, ("1*.*",)),
         pl.coalesce("SenderIPv4", "SenderIPv6").str.contains(r"^1.*\..*$")),
        (Cond("subject", Op.REGEX, (r"(?i)\bpassword|verify\b",)), pl.col("Subject").str.contains(r"(?i)\bpassword|verify\b")),
        (Cond("email_size", Op.GT, ("3000",)), pl.col("EmailSize") > 3000),
        (Cond("email_size", Op.LT, ("2000",)), pl.col("EmailSize") < 2000),
        (Cond("spf", Op.ANY, ("FAIL", "softfail")), pl.col("AuthenticationDetails").str.json_path_match("$.SPF")
         .is_in(["fail", "softfail"])),
        (Cond("threat_type", Op.ANY, ("spam",)), pl.col("ThreatTypes").fill_null("").str.contains("Spam")),
        (Cond("first_contact", Op.ANY, ("true",)), pl.col("IsFirstContact").fill_null(False)),
    ]
    for cond, expected in cases:
        got = run(lake, cond)
        want = events.filter(expected.fill_null(False))
        assert keys(got) == keys(want), cond
    assert any(run(lake, c).height for c, _ in cases)


def test_nested_groups_follow_boolean_logic(lake, events):
    phish = pl.col("ThreatTypes").fill_null("").str.contains("Phish")
    delivered = pl.col("DeliveryAction") == "Delivered"
    big = pl.col("EmailSize") > 2500
    where = Or(And(Cond("threat_type", Op.ANY, ("Phish",)), Not(Cond("delivery_action", Op.ANY, ("Delivered",)))),
               Not(Or(Cond("email_size", Op.GT, ("2500",)), Cond("delivery_action", Op.ANY, ("Delivered",)))))
    want = events.filter((phish & ~delivered) | ~(big | delivered))
    assert keys(run(lake, where)) == keys(want) and want.height > 0


def test_conditions_on_other_tables_join_only_what_they_need(lake, events):
    urls = table(lake, "EmailUrlInfo")
    domain = urls["UrlDomain"].drop_nulls().mode()[0]
    with_url = urls.filter(pl.col("UrlDomain") == domain)["NetworkMessageId"].unique()
    got = run(lake, Cond("url_domain", Op.ANY, (domain,)))
    assert keys(got) == keys(events.filter(pl.col("NetworkMessageId").is_in(with_url.implode())))
    # NOT over a joined condition: every message without such a URL, including those without URLs
    assert keys(run(lake, Not(Cond("url_domain", Op.ANY, (domain,))))) == keys(events) - keys(got)
    _, plan = compile_query(lake, Query("all_email", WINDOW, Cond("url_domain", Op.ANY, (domain,))))
    assert plan.tables == ("EmailEvents", "EmailUrlInfo")
    _, plan = compile_query(lake, Query("all_email", WINDOW, Cond("sender_domain", Op.ANY, (domain,))))
    assert plan.tables == ("EmailEvents",) and "Subject" not in compile_query(
        lake, Query("all_email", WINDOW), columns=["NetworkMessageId"])[1].columns

    files = table(lake, "EmailAttachmentInfo")
    if files.height:
        name = files["FileName"][0]
        want = files.filter(pl.col("FileName").str.to_lowercase() == name.lower()).select(
            "NetworkMessageId", pl.col("RecipientEmailAddress").str.to_lowercase())
        got = run(lake, Cond("attachment_filename", Op.ANY, (name.upper(),)))
        assert {(n, r.lower()) for n, r in keys(got)} == set(want.iter_rows())


def test_directory_tags_and_clicks(lake, events):
    people = table(lake, "IdentityInfo").sort("Timestamp").group_by("EmailAddress").last()
    vips = people.filter(pl.col("Tags").fill_null("").str.contains("Priority account"))["EmailAddress"].str.to_lowercase()
    got = run(lake, Cond("tags", Op.ANY, ("priority account",)))
    want = events.filter(pl.col("RecipientEmailAddress").str.to_lowercase().is_in(vips.implode()))
    assert keys(got) == keys(want) and want.height > 0

    clicks = table(lake, "UrlClickEvents")
    verdict = clicks["ActionType"].mode()[0]
    clicked = clicks.filter(pl.col("ActionType") == verdict).select("NetworkMessageId", pl.col("AccountUpn").str.to_lowercase())
    got = run(lake, Cond("click_verdict", Op.ANY, (verdict,)))
    assert {(n, r.lower()) for n, r in keys(got)} == set(clicked.unique().iter_rows()) & {
        (n, r.lower()) for n, r in keys(events)}


def test_lookalike_domains(lake, events):
    org = events.filter(pl.col("EmailDirection") == "Intra-org")["SenderFromDomain"][0]
    got = run(lake, Cond("sender_domain", Op.LOOKALIKE, (org,)))
    domains = events["SenderFromDomain"].drop_nulls().unique().to_list()
    fakes = [d for d in domains if imitates(d, org)]
    assert keys(got) == keys(events.filter(pl.col("SenderFromDomain").is_in(fakes)))
    assert org not in set(events.filter(pl.col("SenderFromDomain").is_in(fakes))["SenderFromDomain"])


def test_window_has_no_horizon_and_cuts_exactly(lake, events):
    middle = events["Timestamp"].sort()[events.height // 2]
    got = query(Query("all_email", Window(start=middle, end=middle + timedelta(hours=6))), lake,
                columns=["Timestamp"]).collect()
    want = events.filter((pl.col("Timestamp") >= middle) & (pl.col("Timestamp") < middle + timedelta(hours=6)))
    assert got.height == want.height > 0
    old = Query("all_email", Window.between("2001-01-01", "2026-12-31"))
    assert query(old, lake, columns=["Timestamp"]).collect().height == events.height
    now = events["Timestamp"].max() + timedelta(hours=1)
    last_day = query(Query("all_email", Window.last("25h")), lake, columns=["Timestamp"], now=now).collect()
    assert last_day.height == events.filter(pl.col("Timestamp") >= now - timedelta(hours=25)).height


# ----------------------------------------------------------------------------- panels' data


def test_snapshot_histogram_counts_and_page(lake, events):
    snap = agg.snapshot(lake, Query("all_email", WINDOW), pivot="Delivery action", page_size=25)
    assert snap.rows == events.height and snap.messages == events["NetworkMessageId"].n_unique()
    assert snap.histogram["count"].sum() == events.height
    by_action = dict(snap.histogram.group_by("series").agg(pl.col("count").sum()).iter_rows())
    assert by_action == dict(events.group_by("DeliveryAction").len().iter_rows())
    assert snap.page.height == 25 and snap.page["Timestamp"].to_list() == sorted(events["Timestamp"], reverse=True)[:25]

    folded = agg.snapshot(lake, Query("all_email", WINDOW), pivot="sender_domain", top=3)
    assert folded.series[-1] == agg.OTHER and len(folded.series) == 4
    assert folded.histogram["count"].sum() == events.height
    with pytest.raises(InputError, match="cannot pivot"):
        agg.snapshot(lake, Query("malware", WINDOW), pivot="url_domain")


def test_multi_valued_pivot_counts_each_value(lake, events):
    snap = agg.snapshot(lake, Query("all_email", WINDOW), pivot="detection_technology", top=50)
    import json

    techniques = [t for text in events["DetectionMethods"].drop_nulls() for ts in json.loads(text).values() for t in ts]
    got = snap.histogram.filter(pl.col("series") != "(none)")["count"].sum()
    assert got == len(techniques)
    assert set(snap.series) - {"(none)"} == set(techniques)


def test_top_panels(lake, events):
    q = Query("all_email", WINDOW)
    top = agg.top_targeted_users(lake, q, n=3)
    want = events.group_by(pl.col("RecipientEmailAddress").str.to_lowercase()).len().sort(
        ["len", "RecipientEmailAddress"], descending=[True, False]).head(3)
    assert top["attempts"].to_list() == want["len"].to_list()
    urls = agg.top_urls(lake, q, n=5)
    assert (urls["blocked"] + urls["junked"] + urls["delivered"] <= urls["messages"]).all()
    origin = agg.email_origin(lake, q)
    assert origin["messages"].sum() == events.height and origin["country"].str.len_chars().min() >= 2


def test_entity_timeline_and_content_permission(lake, small_tenant):
    post = table(lake, "EmailPostDeliveryEvents")
    row = post.row(0, named=True) if post.height else None
    if row is None:
        pytest.skip("the small tenant has no post-delivery event")
    store = EmbeddedMailStore.for_tenant(small_tenant)
    entity = email_entity(lake, row["NetworkMessageId"], row["RecipientEmailAddress"], mail_store=store)
    events_ = entity.timeline["Event"].to_list()
    assert events_[0] == "Original delivery" and row["ActionType"] in events_
    assert entity.timeline["Timestamp"].is_sorted()
    assert entity.preview is None and entity.headers and "Received:" in entity.headers
    readable = email_entity(lake, row["NetworkMessageId"], row["RecipientEmailAddress"], mail_store=store,
                            read_content=True)
    assert readable.preview and "<" not in readable.preview[:200]
    with pytest.raises(NotFound, match="no message"):
        email_entity(lake, "00000000-0000-0000-0000-000000000000", "nobody@example.com")


# ----------------------------------------------------------------------------- saved, export, actions


def test_saved_queries(tmp_path):
    q = Query("phish", Window.last("90d"), Cond("sender_domain", Op.ANY, ("a.example",)))
    save(tmp_path, "Phish, 90 days", q, author="ann")
    assert load(tmp_path, "phish, 90 days").query == q
    with pytest.raises(ConflictError, match="exists"):
        save(tmp_path, "Phish, 90 days", q, author="bob")
    save(tmp_path, "Phish, 90 days", Query("malware"), author="bob", overwrite=True)
    assert [s.query.view for s in list_saved(tmp_path)] == ["malware"]
    with pytest.raises(InputError, match="bad query name"):
        save(tmp_path, "../../etc/passwd", q, author="eve")
    delete(tmp_path, "Phish, 90 days")
    with pytest.raises(NotFound, match="no saved query"):
        load(tmp_path, "Phish, 90 days")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_has_no_row_cap_and_reports_progress(lake, events, tmp_path, suffix):
    seen: list[tuple[int, int]] = []
    out = tmp_path / f"rows.{suffix}"
    result = export(lake, Query("all_email", WINDOW), out, progress=lambda d, t: seen.append((d, t)))
    back = pl.read_csv(out) if suffix == "csv" else pl.read_parquet(out)
    assert result.rows == back.height == events.height
    assert seen[-1][0] == seen[-1][1] == len(seen)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]


def test_export_failure_leaves_nothing(lake, tmp_path):
    with pytest.raises(InputError, match="csv or .parquet"):
        export(lake, Query("all_email", WINDOW), tmp_path / "rows.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_action_requests_stay_within_the_selection():
    many = [MessageRef(f"m{i}", "ann@contoso.com") for i in range(150)]
    with pytest.raises(InputError, match="needs confirmation"):
        build_request(ActionKind.HARD_DELETE, many, requested_by="bob")
    request = build_request(ActionKind.HARD_DELETE, many + many[:5], requested_by="bob", confirmed=True)
    assert request.targets == tuple(many) and request.handler == "remediation"
    with pytest.raises(InputError, match="no message selected"):
        build_request(ActionKind.SOFT_DELETE, [], requested_by="bob")
    with pytest.raises(InputError, match="incident id"):
        build_request(ActionKind.ADD_TO_INCIDENT, many[:1], requested_by="bob")
    assert build_request("Start automated investigation", many[:2], requested_by="bob").to_json()["handler"] == "investigations"


@pytest.mark.parametrize("module", ["workbench.explorer", "workbench.explorer.properties", "workbench.explorer.query",
                                    "workbench.explorer.views", "workbench.explorer.compile", "workbench.explorer.saved",
                                    "workbench.explorer.export", "workbench.explorer.actions", "workbench.ui.render",
                                    "workbench.detect.analyzers.lookalike"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_clicks_of_the_matching_mail(lake, events):
    clicks = table(lake, "UrlClickEvents")
    got = agg.clicks_of_mail(lake, Query("all_email", WINDOW), n=100_000)
    want = clicks.filter(pl.col("NetworkMessageId").is_in(events["NetworkMessageId"].implode()))
    assert got.height == want.height > 0 and got["Timestamp"].is_sorted(descending=True)
