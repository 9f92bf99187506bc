"""The Explorer panel driven headless in Python: widgets are set as a user would set them and
every answer is checked against polars over the lake files directly."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.explorer import Cond, Op, Query, Window
from workbench.explorer.actions import ActionKind
from workbench.lake import Lake
from workbench.mail.embedded import EmbeddedMailStore
from workbench.ui.explorer import ExplorerPanel

WINDOW = Window.between("2026-11-17", "2026-11-21")


@pytest.fixture(scope="module")
def events(small_tenant) -> pl.DataFrame:
    return pl.read_parquet(Lake.for_tenant(small_tenant).partition_files("EmailEvents"))


@pytest.fixture
def panel(small_tenant, tmp_path) -> ExplorerPanel:
    p = ExplorerPanel(Lake.for_tenant(small_tenant), mail_store=EmbeddedMailStore.for_tenant(small_tenant),
                      query=Query("all_email", WINDOW), chart=False, page_size=20, export_dir=tmp_path)
    p.refresh()
    return p


def grid_rows(panel: ExplorerPanel) -> int:
    return panel.grid.value.count("<tr>") - 1  # minus the header row


def test_filters_set_through_widgets(panel, events):
    assert panel.snapshot.rows == events.height and grid_rows(panel) == 20
    domain = events["SenderFromDomain"].mode()[0]
    row = panel.builder.add_condition()
    row.prop.value = "sender_domain"
    row.op.value = Op.ANY
    row.text.value = f" {domain.upper()} , nobody.example "
    negated = panel.builder.add_condition()
    negated.prop.value = "delivery_action"
    negated.tags.value = ["Blocked"]
    negated.negate.value = True
    panel.refresh_button.click()
    want = events.filter((pl.col("SenderFromDomain") == domain) & (pl.col("DeliveryAction") != "Blocked"))
    assert panel.snapshot.rows == want.height > 0
    assert f"<b>{want.height:,}</b> rows" in panel.status.value

    panel.builder.connective.value = "OR"
    panel.refresh()
    want = events.filter((pl.col("SenderFromDomain") == domain) | (pl.col("DeliveryAction") != "Blocked"))
    assert panel.snapshot.rows == want.height


def test_nested_group_and_bad_input(panel, events):
    group = panel.builder.add_group()
    group.connective.value = "OR"
    group.negate.value = True
    a = group.add_condition()
    a.prop.value = "threat_type"
    a.tags.value = ["Phish"]
    b = group.add_condition()
    b.prop.value = "email_size"
    b.op.value = Op.GT
    b.text.value = "3000"
    panel.refresh()
    want = events.filter(~(pl.col("ThreatTypes").fill_null("").str.contains("Phish") | (pl.col("EmailSize") > 3000)))
    assert panel.snapshot.rows == want.height
    b.text.value = "lots"
    before = panel.snapshot
    assert panel.refresh() is None and "whole numbers" in panel.error.value and panel.snapshot is before


def test_view_pivot_and_paging(panel, events):
    panel.view.value = "phish"
    panel.pivot.value = "sender_domain"
    panel.refresh()
    phish = events.filter(pl.col("ThreatTypes").fill_null("").str.contains("Phish"))
    assert panel.snapshot.rows == phish.height and panel.snapshot.pivot == "sender_domain"
    assert panel.snapshot.histogram["count"].sum() == phish.height
    assert "Top URLs" in panel.tabs.titles
    panel.tabs.selected_index = panel.tabs.titles.index("Top targeted users")
    top = phish.group_by("RecipientEmailAddress").len().sort("len", descending=True)["len"][0]
    assert f"<td>{top}</td>" in panel.tab_outputs["Top targeted users"].value

    panel.view.value = "all_email"
    panel.refresh()
    panel.next_button.click()
    assert panel.offset == 20 and "rows 21–40" in panel.page_label.value
    panel.sort.value = "Subject"
    assert panel.offset == 0 and grid_rows(panel) == 20


def test_legend_click_and_brush_narrow_the_query(panel, events):
    panel.on_legend_pick(["Junked"])
    assert panel.snapshot.rows == events.filter(pl.col("DeliveryAction") == "Junked").height
    lo, hi = events["Timestamp"].sort()[100], events["Timestamp"].sort()[800]
    panel.on_brush(lo.timestamp() * 1000, hi.timestamp() * 1000)
    want = events.filter((pl.col("DeliveryAction") == "Junked") & pl.col("Timestamp").is_between(
        lo.replace(microsecond=lo.microsecond // 1000 * 1000), hi, closed="left"))
    assert abs(panel.snapshot.rows - want.height) <= 1  # millisecond rounding of the brush ends


def test_chart_selection_from_the_browser_reaches_the_panel(small_tenant, events):
    panel = ExplorerPanel(Lake.for_tenant(small_tenant), query=Query("all_email", WINDOW), chart=True)
    panel.refresh()
    chart = panel._chart
    assert chart is not None and chart.spec["params"][0]["name"] == "legend"
    chart._vl_selections = {"legend": {"value": {"vlPoint": {"or": [{"series": "Delivered"}]}}, "store": []},
                            "brush": {"value": None, "store": []}}
    assert panel.snapshot.rows == events.filter(pl.col("DeliveryAction") == "Delivered").height


def test_select_open_export_and_act(panel, events, tmp_path):
    post = pl.read_parquet(panel.lake.partition_files("EmailPostDeliveryEvents"))
    target = post.row(0, named=True)
    panel.builder.add_condition(Cond("network_message_id", Op.ANY, (target["NetworkMessageId"],)))
    panel.refresh()
    idx = panel._page["RecipientEmailAddress"].to_list().index(target["RecipientEmailAddress"])
    panel.selection.value = (idx,)
    panel.open_button.click()
    titles = panel.entity.children[1].titles
    timeline = panel.entity.children[1].children[titles.index("Timeline")].value
    assert "Original delivery" in timeline and target["ActionType"] in timeline
    preview = panel.entity.children[1].children[titles.index("Preview")].value
    assert "needs permission" in preview

    panel.export_format.value = "parquet"
    path = panel.export()
    assert pl.read_parquet(path).height == panel.snapshot.rows

    panel.action.value = ActionKind.SOFT_DELETE.value
    request = panel.request_action()
    assert [t.network_message_id for t in request.targets] == [target["NetworkMessageId"]]
    assert panel.requests == [request] and "Soft delete" in panel.action_result.value
    panel.selection.value = ()
    assert panel.request_action() is None and "no message selected" in panel.error.value


def test_a_link_prefills_the_panel(small_tenant, monkeypatch):
    q = Query("malware", Window.between("2026-11-18", "2026-11-20"), Cond("sender_domain", Op.NONE, ("a.example",)))
    monkeypatch.setenv("QUERY_STRING", "q=" + q.to_link())
    panel = ExplorerPanel.for_tenant(small_tenant, chart=False)
    assert panel.current_query() == q and panel.snapshot is not None and panel.view.value == "malware"


def test_chosen_columns_and_selection_count(panel, events):
    panel.columns.value = ["Timestamp", "Subject", "EmailSize"]
    assert "<th>EmailSize</th>" in panel.grid.value and "<th>SenderFromAddress</th>" not in panel.grid.value
    assert list(panel.sort.options) == ["Timestamp", "Subject", "EmailSize"]
    panel.sort.value = "EmailSize"
    sizes = [int(x) for x in __import__("re").findall(r"<td>(\d+)</td></tr>", panel.grid.value)]
    assert sizes and sizes[0] == events["EmailSize"].max()
    panel.selection.value = (0, 1, 2)
    assert panel.selected_count.value.startswith("3 selected")
    assert len({r.network_message_id for r in panel.selected()}) >= 1  # the row key travels although hidden


def test_save_and_reopen_a_query(small_tenant, tmp_path):
    panel = ExplorerPanel(Lake.for_tenant(small_tenant), query=Query("all_email", WINDOW), chart=False,
                          saved_dir=tmp_path / "queries", link_base="http://127.0.0.1:8866/voila/render/Explorer.ipynb")
    panel.refresh()
    panel.builder.add_condition(Cond("threat_type", Op.ANY, ("Phish",)))
    panel.save_name.value = "Phish in the window"
    panel.save_button.click()
    assert list(panel.saved.options) == ["Phish in the window"]
    wanted = panel.current_query()
    panel.save_button.click()
    assert "exists" in panel.error.value  # no silent overwrite
    panel.builder.clear()
    panel.view.value = "malware"
    panel.open_saved_button.click()
    assert panel.current_query() == wanted and panel.snapshot.query == wanted
    assert "?q=" in panel.link.value


def test_incident_actions_on_the_selection(small_tenant, monkeypatch, tmp_path):
    from workbench.incidents.service import IncidentService
    from workbench.store import open_store

    db = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    monkeypatch.setenv("WORKBENCH_DB_URL", db)  # keep the shared small tenant's own store untouched
    monkeypatch.setenv("WORKBENCH_USER", "ana")
    monkeypatch.delenv("QUERY_STRING", raising=False)
    panel = ExplorerPanel.for_tenant(small_tenant, query=Query("all_email", WINDOW), chart=False, page_size=20)
    panel.selection.value = (0, 1)
    picked = {(panel._page["NetworkMessageId"][i], panel._page["RecipientEmailAddress"][i].lower()) for i in (0, 1)}
    panel.action.value = ActionKind.CREATE_INCIDENT.value
    panel.incident.value = "Suspicious invoices <b>x</b>"
    panel.request_action()
    svc = IncidentService(open_store(url=db), "test")
    [incident] = svc.list()
    assert incident.name == "Suspicious invoices <b>x</b>" and "incident 1 created" in panel.action_result.value
    assert "<b>x" not in panel.action_result.value
    assert {tuple(e.entity.value.split("|")) for e in svc.evidence(incident.id)} == picked
    panel.selection.value = (2,)
    panel.action.value = ActionKind.ADD_TO_INCIDENT.value
    panel.incident.value = f"#{incident.id}"
    panel.request_action()
    assert len(svc.evidence(incident.id)) == 3 and "1 email(s) added to incident 1" in panel.action_result.value
    panel.incident.value = "999"
    assert panel.request_action() is None and "no incident 999" in panel.error.value
    panel.action.value = ActionKind.START_INVESTIGATION.value
    panel.request_action()
    [alert] = svc.alerts(policy=["manual_investigation"])
    assert alert.incident_id is not None and "investigation requested" in panel.action_result.value
