"""PlaybookParameters: one value fed by the notebook's parameters cell, a Voila address and the
widgets form; every bad value is a one-line error naming the parameter and the fix. No kernel."""

from __future__ import annotations

import papermill
import pytest

from workbench.air.parameters import PlaybookParameters
from workbench.air.playbook import PLAYBOOKS_DIR
from workbench.errors import InputError
from workbench.ui.playbook_app import ParametersForm, open_playbook, under_voila

NOTEBOOK = {"tenant": "small", "messages": ["m1", " m2 ", "m1", ""], "alert_id": "a-1", "investigation_id": 0,
            "started_by": "scheduler", "db_url": "sqlite:///x.db", "record_notebook": "/tmp/run.ipynb",
            "In": ["..."], "get_ipython": print, "_": None}


def test_from_notebook_reads_declared_names_only():
    p = PlaybookParameters.from_notebook(NOTEBOOK)
    assert p.messages == ("m1", "m2") and p.alert_id == "a-1" and p.tenant == "small" and p.started_by == "scheduler"
    assert p.declared == {"tenant", "messages", "alert_id", "investigation_id", "started_by", "db_url", "record_notebook"}
    assert p.mode == "run" and p.days == 30 and p.user == ""
    assert p.to_notebook() == {"tenant": "small", "messages": ["m1", "m2"], "alert_id": "a-1", "investigation_id": 0,
                               "started_by": "scheduler", "db_url": "sqlite:///x.db", "record_notebook": "/tmp/run.ipynb"}
    assert PlaybookParameters.from_notebook({}).mode == "form"
    assert PlaybookParameters.from_notebook({"investigation_id": 4}).mode == "show"
    assert PlaybookParameters.from_notebook({"alert_id": 12}).alert_id == "12"  # papermill -p alert_id 12 gives an int


@pytest.mark.parametrize(("values", "message"), [
    ({"messages": "m1"}, "parameter messages must be a list of NetworkMessageIds, not one string"),
    ({"messages": ["m1", 2]}, "parameter messages must hold strings; 2 is a int"),
    ({"messages": {"m1": 1}}, "parameter messages must be a list of strings, not dict"),
    ({"investigation_id": "3"}, "parameter investigation_id must be an integer, not str"),
    ({"investigation_id": True}, "parameter investigation_id must be an integer, not bool"),
    ({"investigation_id": -1}, "parameter investigation_id is -1"),
    ({"tenant": 5}, "parameter tenant must be a string, not int"),
    ({"days": 0}, "parameter days is 0; give a whole number of days from 1 to 366"),
])
def test_bad_notebook_values_are_one_line_errors(values, message):
    with pytest.raises(InputError) as err:
        PlaybookParameters.from_notebook(values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_query_string_overrides_what_it_names():
    base = PlaybookParameters.from_notebook(NOTEBOOK)
    shown = base.with_query("?investigation=12&token=secret&voila-theme=dark")
    assert shown.investigation_id == 12 and shown.mode == "show" and shown.tenant == "small"
    ran = base.with_query("alert=a-9")
    assert (ran.alert_id, ran.messages, ran.mode) == ("a-9", (), "run")  # the alert's own messages
    assert base.with_query("messages=x,y&message=z").messages == ("x", "y", "z")
    assert base.with_query("user=ana%40contoso.com&days=30").user == "ana@contoso.com"
    assert base.replace(investigation_id=3).with_query("alert=a-2").investigation_id == 0
    assert base.with_query("") == base
    assert PlaybookParameters.from_query_string("investigation=2") == PlaybookParameters(investigation_id=2)
    assert PlaybookParameters.from_query_string("alert=a-3", base) == base.with_query("alert=a-3")


@pytest.mark.parametrize(("qs", "message"), [
    ("investigation=abc", "?investigation=abc is not an investigation number; use e.g. ?investigation=3"),
    ("investigation=0", "?investigation=0 is not an investigation number"),
    ("investigation=%D9%A3", "is not an investigation number"),  # an Arabic-Indic digit
    ("alert=", "?alert= is empty; give a value"),
    ("alert=a&alert=b", "?alert= is given 2 times; give it once"),
    ("days=9999", "?days=9999 is not a number of days from 1 to 366"),
    ("bogus=1", "unknown address parameter ?bogus=; use ?investigation=ID, ?alert=ID"),
    ("db_url=sqlite:////etc/x", "?db_url= cannot be set from the address (the server chooses"),
    ("tenant=../other", "?tenant= cannot be set from the address"),
    ("started_by=admin", "?started_by= cannot be set from the address"),
    ("investigation=3&alert=a", "give either ?investigation=ID (show it) or ?alert=ID"),
])
def test_bad_query_strings_are_one_line_errors(qs, message):
    with pytest.raises(InputError) as err:
        PlaybookParameters().with_query(qs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_playbook_declares_only_known_parameters():
    known = set(PlaybookParameters.fields())
    for path in sorted(PLAYBOOKS_DIR.glob("*.ipynb")):
        declared = set(papermill.inspect_notebook(str(path)))
        assert declared <= known, f"{path.name}: {declared - known} are not PlaybookParameters fields"
        assert {"investigation_id", "alert_id", "tenant", "db_url"} <= declared, path.name


def test_widgets_form_round_trip():
    params = PlaybookParameters.from_notebook(NOTEBOOK)
    form = ParametersForm(params)
    assert form.parameters() == params
    assert "record_notebook" in form.inputs and "user" in form.inputs
    form.inputs["messages"].value = "n1\nn2, n3\n\n"
    form.inputs["alert_id"].value = " a-7 "
    form.inputs["investigation_id"].value = 0
    edited = form.parameters()
    assert edited == params.replace(messages=("n1", "n2", "n3"), alert_id="a-7")
    form.set_parameters(edited.replace(investigation_id=5))
    assert form.inputs["investigation_id"].value == 5 and form.parameters().mode == "show"
    # only the fields shown are edited; the rest is kept
    visitor = ParametersForm(params, ("alert_id", "investigation_id"))
    assert set(visitor.inputs) == {"alert_id", "investigation_id"} and visitor.parameters() == params


def test_widgets_form_run_button_validates():
    ran = []
    form = ParametersForm(PlaybookParameters(), on_run=ran.append)
    form.run_button.click()
    assert not ran and "nothing to do" in form.error.value
    form.inputs["tenant"].value = "<img src=x onerror=alert(1)>"
    form.inputs["messages"].value = "m1"
    form.run_button.click()
    assert ran and ran[0].messages == ("m1",) and form.error.value == ""
    ran.clear()
    form.on_run = lambda p: (_ for _ in ()).throw(InputError("bad <b>thing</b>"))
    form.run_button.click()
    assert "bad &lt;b&gt;thing&lt;/b&gt;" in form.error.value and "<b>" not in form.error.value


def test_voila_address_errors_are_shown_escaped_not_raised():
    env = {"SERVER_SOFTWARE": "voila/0.5.13", "QUERY_STRING": "investigation=<script>x</script>"}
    assert under_voila(env) and not under_voila({}) and not under_voila({"SERVER_SOFTWARE": "TornadoServer"})
    app = open_playbook("phish_zap", {"investigation_id": 0, "alert_id": "", "messages": [], "tenant": ""},
                        environ=env)
    assert "is not an investigation number" in app.status.value and "<script>" not in app.status.value
    assert set(app.form.inputs) == {"messages", "alert_id", "investigation_id"}  # what a visitor may set
