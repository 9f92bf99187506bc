"""A playbook's parameters as one value, whichever way they arrive: the papermill-injected
``parameters`` cell (:meth:`PlaybookParameters.from_notebook`), a Voila address
(:meth:`PlaybookParameters.with_query`) or the widgets form (``workbench.ui.playbook_app``).

Every check raises an :class:`~workbench.errors.InputError` of one line naming the parameter
and the fix. The address may only choose *what* to look at (``investigation``, ``alert``,
``messages``, ``user``): the tenant, the database and who is acting are the server's to decide.

>>> p = PlaybookParameters.from_notebook({"tenant": "demo", "messages": ["m1"], "alert_id": "", "In": []})
>>> p.messages, p.mode
(('m1',), 'run')
>>> p.with_query("investigation=3").investigation_id
3
>>> PlaybookParameters().with_query("investigation=x")
Traceback (most recent call last):
...
workbench.errors.InputError: ?investigation=x is not an investigation number; use e.g. ?investigation=3
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from workbench.errors import InputError

# address key -> field; the field names are accepted too
QUERY_KEYS = {"investigation": "investigation_id", "alert": "alert_id", "messages": "messages", "message": "messages",
              "user": "user", "days": "days", "investigation_id": "investigation_id", "alert_id": "alert_id"}
# set by the server (or Voila itself), never by a visitor; ignored
_IGNORED_KEYS = ("token",)
_IGNORED_PREFIXES = ("voila-",)
_SERVER_ONLY = ("tenant", "db_url", "started_by", "record_notebook")
MAX_MESSAGES = 10_000
MAX_DAYS = 366


@dataclass(frozen=True)
class PlaybookParameters:
    """What a playbook run needs; empty strings and 0 mean "not given".

    *mode* says what the values ask for: ``show`` an existing investigation, ``run`` the
    playbook (messages, an alert or a user to investigate) or ``form`` (nothing yet).
    """

    tenant: str = ""  # tenant name or folder ("" : WORKBENCH_TENANT, else demo)
    messages: tuple[str, ...] = ()  # NetworkMessageIds to investigate
    alert_id: str = ""  # the alert that started the run
    investigation_id: int = 0  # an existing investigation to show (0: none)
    user: str = ""  # the account (UPN) a user playbook investigates
    days: int = 30  # how many days back the playbook looks (before the messages; a user playbook: before the data's end)
    started_by: str = ""  # who or what started it ("": the acting user)
    db_url: str = ""  # database URL ("": WORKBENCH_DB_URL, else the tenant's workbench.sqlite)
    record_notebook: str = ""  # where the executed notebook is kept
    declared: frozenset[str] = field(default=frozenset(), compare=False, repr=False)  # names the notebook declares

    def __post_init__(self) -> None:
        for name in ("tenant", "alert_id", "user", "started_by", "db_url", "record_notebook"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and name == "alert_id":
                object.__setattr__(self, name, str(value))  # papermill -p alert_id 12 infers an int
            elif not isinstance(value, str):
                raise InputError(f"parameter {name} must be a string, not {type(value).__name__}; "
                                 f"write it in quotes, e.g. {name} = \"...\"")
            object.__setattr__(self, name, getattr(self, name).strip())
        object.__setattr__(self, "messages", _messages(self.messages))
        if isinstance(self.investigation_id, bool) or not isinstance(self.investigation_id, int):
            kind = type(self.investigation_id).__name__
            raise InputError(f"parameter investigation_id must be an integer, not {kind}; e.g. investigation_id = 3 (0: none)")
        if isinstance(self.days, bool) or not isinstance(self.days, int) or not 1 <= self.days <= MAX_DAYS:
            raise InputError(f"parameter days is {self.days!r}; give a whole number of days from 1 to {MAX_DAYS}, "
                             "e.g. days = 7")
        if self.investigation_id < 0:
            raise InputError(f"parameter investigation_id is {self.investigation_id}; give an investigation number "
                             "(1 or more), or 0 for none")
        object.__setattr__(self, "declared", frozenset(self.declared))

    @property
    def mode(self) -> str:
        """``show``, ``run`` or ``form``: what these values ask the playbook to do."""
        if self.investigation_id:
            return "show"
        if self.messages or self.alert_id or self.user:
            return "run"
        return "form"

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The parameter names (what a notebook's ``parameters`` cell may declare)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "declared")

    @classmethod
    def from_notebook(cls, namespace: Mapping[str, Any]) -> PlaybookParameters:
        """The parameters a notebook's ``parameters`` cell (and papermill's injected cell) left in
        *namespace* (``globals()``); other names in it are ignored."""
        names = [n for n in cls.fields() if n in namespace]
        values = {n: namespace[n] for n in names}
        if "messages" in values:
            values["messages"] = _messages(values["messages"])
        return cls(**values, declared=frozenset(names))

    @classmethod
    def from_query_string(cls, query_string: str, base: PlaybookParameters | None = None) -> PlaybookParameters:
        """*base* (default: all defaults) overridden by a Voila address's query string; see :meth:`with_query`."""
        return (base if base is not None else cls()).with_query(query_string)

    def replace(self, **changes: Any) -> PlaybookParameters:
        """A copy with *changes* (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_query(self, query_string: str) -> PlaybookParameters:
        """These parameters overridden by a Voila address's query string (``alert=ID``,
        ``investigation=ID``, ``messages=a,b`` or repeated ``message=``, ``user=UPN``)."""
        try:
            pairs = parse_qs(query_string.lstrip("?"), keep_blank_values=True, strict_parsing=False,
                             max_num_fields=MAX_MESSAGES + 20)
        except ValueError:
            raise InputError(f"the address has more than {MAX_MESSAGES} values; "
                             "investigate fewer messages at a time") from None
        changes: dict[str, Any] = {}
        for key, values in pairs.items():
            if key in _IGNORED_KEYS or key.startswith(_IGNORED_PREFIXES):
                continue
            if key in _SERVER_ONLY:
                raise InputError(f"?{key}= cannot be set from the address (the server chooses the tenant, the "
                                 "database and who is acting); remove it and use ?investigation=ID or ?alert=ID")
            target = QUERY_KEYS.get(key)
            if target is None:
                raise InputError(f"unknown address parameter ?{key}=; use ?investigation=ID, ?alert=ID, "
                                 "?messages=ID,ID or ?user=UPN")
            if target == "messages":
                found = [m for v in values for m in v.split(",") if m.strip()]
                changes["messages"] = (*changes.get("messages", ()), *found)
                continue
            if len(values) > 1:
                raise InputError(f"?{key}= is given {len(values)} times; give it once")
            value = values[0].strip()
            if target == "investigation_id":
                if not value.isascii() or not value.isdigit() or int(value) < 1:
                    raise InputError(f"?{key}={value} is not an investigation number; use e.g. ?investigation=3")
                changes[target] = int(value)
            elif target == "days":
                if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
                    raise InputError(f"?days={value} is not a number of days from 1 to {MAX_DAYS}; use e.g. ?days=7")
                changes[target] = int(value)
            else:
                if not value:
                    raise InputError(f"?{key}= is empty; give a value, e.g. ?{key}=ID")
                changes[target] = value
        if "investigation_id" in changes and ({"alert_id", "messages", "user", "days"} & set(changes)):
            raise InputError("give either ?investigation=ID (show it) or ?alert=ID / ?messages= / ?user= (run the "
                             "playbook), not both")
        if {"alert_id", "messages", "user"} & set(changes):
            base = self.replace(investigation_id=0)
            if "alert_id" in changes and "messages" not in changes:
                base = base.replace(messages=())  # the alert's own messages
        else:
            base = self
        return base.replace(**changes)

    def to_notebook(self) -> dict[str, Any]:
        """The values as papermill parameters (only the names the notebook declares, when known)."""
        values = {n: (list(v) if n == "messages" else v) for n in self.fields() for v in [getattr(self, n)]}
        return {n: v for n, v in values.items() if not self.declared or n in self.declared}


def _messages(value: Any) -> tuple[str, ...]:
    """A list of NetworkMessageIds (strings), without blanks or repeats."""
    if isinstance(value, str):
        raise InputError("parameter messages must be a list of NetworkMessageIds, not one string; "
                         "write messages = [\"id1\", \"id2\"]")
    if not isinstance(value, (list, tuple)):
        raise InputError(f"parameter messages must be a list of strings, not {type(value).__name__}; "
                         "write messages = [\"id1\", \"id2\"]")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise InputError(f"parameter messages must hold strings; {bad[0]!r} is a {type(bad[0]).__name__}: "
                         "quote every NetworkMessageId")
    if len(value) > MAX_MESSAGES:
        raise InputError(f"parameter messages has {len(value)} ids; investigate at most {MAX_MESSAGES} at a time")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
