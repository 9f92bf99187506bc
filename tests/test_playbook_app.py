"""open_playbook headless, on the small tenant: a Voila address shows or runs an investigation,
a papermill run gives a static graph and tables, nothing hostile reaches HTML unescaped; the
playbooks are registered apps of `workbench serve`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import jinja2
import pytest

from workbench import apps as registry
from workbench.air import records
from workbench.air.model import ActionType
from workbench.air.playbook import PLAYBOOK_FOR_POLICY, PLAYBOOKS_DIR
from workbench.incidents.model import EntityKind
from workbench.serve import notebooks_dir, registry_template
from workbench.store import open_store
from workbench.ui.investigation import InvestigationPanel
from workbench.ui.playbook_app import PlaybookApp, StaticRecord, open_playbook

pytestmark = pytest.mark.slow
PAYLOAD = '<img src=x onerror="window.__xss=1">'
EMPTY = {"tenant": "", "messages": [], "alert_id": "", "investigation_id": 0, "started_by": "", "db_url": "",
         "record_notebook": ""}
VOILA = "voila/0.5.13"


@pytest.fixture(scope="module")
def alerted(small_tenant, tmp_path_factory):
    """The small tenant's alerts, filed in a store of their own."""
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService
    from workbench.lake import Lake

    db = f"sqlite:///{tmp_path_factory.mktemp('alerted') / 'wb.sqlite'}"
    store = open_store(url=db)
    alerting.run(store, Lake.for_tenant(small_tenant))
    alerts = IncidentService(store, "test").alerts()
    store.dispose()
    return db, alerts


@pytest.fixture
def env(alerted, small_tenant, monkeypatch):
    db, alerts = alerted
    monkeypatch.setenv("WORKBENCH_TENANT", str(small_tenant.root))
    monkeypatch.setenv("WORKBENCH_DB_URL", db)
    return db, alerts


def test_voila_alert_runs_the_playbook_and_shows_the_new_investigation(env):
    db, alerts = env
    alert = next(a for a in alerts if PLAYBOOK_FOR_POLICY.get(a.policy_id) == "phish_zap")
    app = open_playbook("phish_zap", EMPTY, environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": f"alert={alert.id}"})
    assert isinstance(app, PlaybookApp) and "investigation" in app.status.value
    page = app.page_box.children[0]
    assert isinstance(page, InvestigationPanel)
    rec = records.load(app.store, page.id)
    assert rec.investigation.alert_id == alert.id and rec.investigation.playbook == "phish_zap"
    assert 'class="wb-graph"' in page.body.value and "Pending actions" in page.body.value
    assert f'href="?investigation={page.id}"' in app.status.value
    assert app.form.inputs["alert_id"].value == alert.id
    # the same investigation by its address: shown, not run again
    again = open_playbook("phish_zap", EMPTY, environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": f"investigation={page.id}"})
    assert again.page_box.children[0].id == page.id and len(records.recent(app.store)) == len(records.recent(again.store))


def test_voila_unknown_alert_or_investigation_is_one_escaped_line(env):
    app = open_playbook("phish_zap", EMPTY, environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": "alert=" + PAYLOAD})
    assert "not found" in app.status.value or "no alert" in app.status.value, app.status.value
    assert "<img" not in app.status.value and "&lt;img" in app.status.value and not app.page_box.children
    app = open_playbook("phish_zap", EMPTY, environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": "investigation=987654"})
    assert "987654" in app.status.value and not app.page_box.children
    form = open_playbook("phish_zap", EMPTY, environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": ""})
    assert form.status.value == "" and not form.page_box.children and form.form.run_button.description == "Run"


def test_kernel_run_is_a_static_graph_and_tables(env, small_tenant):
    db, alerts = env
    alert = next(a for a in alerts if PLAYBOOK_FOR_POLICY.get(a.policy_id) == "user_reported_phish")
    out = open_playbook("user_reported_phish", {**EMPTY, "alert_id": alert.id, "started_by": "scheduler"}, environ={})
    assert isinstance(out, StaticRecord) and out.record.investigation.started_by == "scheduler"
    bundle = out._repr_mimebundle_()
    assert '<svg class="wb-graph"' in bundle["text/html"] and "<script" not in bundle["text/html"]
    assert "### Actions" in bundle["text/plain"] and "### Evidence" in bundle["text/plain"]
    shown = open_playbook("user_reported_phish", {**EMPTY, "investigation_id": out.record.investigation.id}, environ={})
    assert shown.record.investigation == out.record.investigation
    lab = open_playbook("user_reported_phish", EMPTY, environ={})  # JupyterLab, nothing given: the form
    assert isinstance(lab, PlaybookApp) and {"tenant", "db_url", "started_by"} <= set(lab.form.inputs)
    lab.form.inputs["alert_id"].value = alert.id
    lab.form.inputs["started_by"].value = "ana"
    lab.form.run_button.click()
    ran = records.load(lab.store, lab.page_box.children[0].id).investigation
    assert (ran.alert_id, ran.started_by, ran.playbook) == (alert.id, "ana", "user_reported_phish"), lab.status.value


def test_hostile_record_text_is_escaped_in_static_and_voila_pages(env):
    db, alerts = env
    store = open_store(url=db)
    inv = records.start(store, "phish_zap", f"Investigate {PAYLOAD}", started_by=PAYLOAD, parameters={})
    records.propose(store, inv, ActionType.BLOCK_URL, EntityKind.URL, f"https://evil.example/{PAYLOAD}", reason=PAYLOAD)
    rec = records.load(store, inv)
    html = StaticRecord(rec)._repr_mimebundle_()["text/html"]
    assert "<img" not in html and "&lt;img src=x" in html and "hxxps[://]evil[.]example" in html
    app = open_playbook("phish_zap", EMPTY, environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": f"investigation={inv}"})
    assert "<img" not in app.page_box.children[0].body.value
    store.dispose()


def test_every_playbook_is_a_served_app():
    playbook_apps = {a.notebook for a in registry.APPS if a.notebook.startswith("playbooks/")}
    assert playbook_apps == {f"playbooks/{p.name}" for p in PLAYBOOKS_DIR.glob("*.ipynb")}
    served = registry.available(notebooks_dir())
    assert playbook_apps <= {a.notebook for a in served}, "notebooks/playbooks must lead to playbooks/"
    assert (notebooks_dir() / "playbooks").resolve() == PLAYBOOKS_DIR.resolve()


def test_home_page_lists_playbooks_when_their_folder_is_served(tmp_path):
    src = Path(registry.__file__).parent / "voila_template"
    shutil.copy(src / "tree.html.j2", tmp_path / "tree.html")
    shutil.copy(src / "page.html.j2", tmp_path / "page.html")
    (tmp_path / "workbench-apps.j2").write_text(registry_template())
    voila_templates = Path(sys.prefix) / "share" / "jupyter" / "voila" / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(tmp_path), str(voila_templates / "base")]),
                             autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_null_translations()

    def render(listing: list[dict]) -> str:
        return env.get_template("tree.html").render(contents={"content": iter(listing)}, base_url="/", resources=None)

    plain = render([{"type": "notebook", "name": "Explorer.ipynb", "path": "Explorer.ipynb"}])
    assert "Threat Explorer" in plain and "Playbook:" not in plain
    page = render([{"type": "notebook", "name": "Explorer.ipynb", "path": "Explorer.ipynb"},
                   {"type": "directory", "name": "playbooks", "path": "playbooks"}])
    assert 'href="/voila/render/playbooks/phish_zap.ipynb"' in page and "Playbook: phish removed after delivery" in page


def test_voila_alert_runs_the_user_playbook_with_its_runner(env):
    db, alerts = env
    alert = next(a for a in alerts if PLAYBOOK_FOR_POLICY.get(a.policy_id) == "compromised_user")
    app = open_playbook("compromised_user", {**EMPTY, "user": "", "days": 7},
                        environ={"SERVER_SOFTWARE": VOILA, "QUERY_STRING": f"alert={alert.id}&days=10"})
    assert set(app.form.inputs) == {"messages", "alert_id", "investigation_id", "user", "days"}
    page = app.page_box.children[0]
    rec = records.load(app.store, page.id)
    assert rec.investigation.playbook == "compromised_user" and rec.investigation.alert_id == alert.id, app.status.value
    assert 'class="wb-graph"' in page.body.value


def test_investigations_app_reads_the_address_like_a_playbook(env, small_tenant, monkeypatch):
    from workbench.ui.investigation import InvestigationsPanel

    monkeypatch.setenv("QUERY_STRING", "investigation=<b>1</b>")
    panel = InvestigationsPanel.for_tenant(small_tenant)
    assert "is not an investigation number" in panel.error.value and "<b>" not in panel.error.value
    monkeypatch.setenv("QUERY_STRING", "token=t&investigation=1")
    panel = InvestigationsPanel.for_tenant(small_tenant)
    assert panel.error.value == "" and panel.page_box.children[0].id == 1
    panel.store.dispose()
