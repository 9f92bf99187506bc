"""The demo organisation: domains, offices, people, managers, partners and outside senders.

Everything is drawn from a numpy Generator, so the same seed gives the same organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.ingest.demo import vocab


@dataclass(frozen=True)
class Office:
    city: str
    country: str  # ISO 3166 alpha-2
    time_zone: str
    utc_offset: int  # hours, winter time (good enough for traffic shape)
    ip_prefix: str  # egress /16 of the office
    latitude: str
    longitude: str


@dataclass(frozen=True)
class User:
    index: int
    object_id: str
    upn: str
    display_name: str
    given_name: str
    surname: str
    department: str
    title: str
    office: Office
    manager: str | None  # manager's UPN
    tags: tuple[str, ...]
    is_executive: bool
    device_id: str
    device_name: str
    os_platform: str
    created: str  # ISO date


@dataclass(frozen=True)
class ExternalSender:
    """A mailbox outside the organisation that writes to it."""

    address: str
    display_name: str
    domain: str
    ips: tuple[str, ...]
    kind: str  # partner | saas | newsletter | spam | person | phish | malware


@dataclass(frozen=True)
class Organisation:
    name: str
    tenant_id: str
    domains: tuple[str, ...]  # accepted domains; the first is primary
    users: tuple[User, ...]
    offices: tuple[Office, ...]
    partners: tuple[ExternalSender, ...]
    saas: tuple[ExternalSender, ...]
    newsletters: tuple[ExternalSender, ...]
    spammers: tuple[ExternalSender, ...]
    people: tuple[ExternalSender, ...]
    edge_ip: str
    mx_host: str

    @property
    def primary_domain(self) -> str:
        return self.domains[0]

    def by_department(self) -> dict[str, list[User]]:
        groups: dict[str, list[User]] = {}
        for user in self.users:
            groups.setdefault(user.department, []).append(user)
        return groups

    @property
    def executives(self) -> list[User]:
        return [u for u in self.users if u.is_executive]


def uuid_from(rng: np.random.Generator) -> str:
    """A version-4 UUID string drawn from the generator."""
    b = bytearray(rng.bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def public_ip(rng: np.random.Generator, prefix: str | None = None) -> str:
    """A public-looking IPv4 address (inside *prefix* like '51.140' when given)."""
    if prefix:
        parts = prefix.split(".")
        rest = [str(int(x)) for x in rng.integers(1, 255, size=4 - len(parts))]
        return ".".join(parts + rest)
    first = int(rng.choice(vocab.PUBLIC_FIRST_OCTETS))
    return ".".join([str(first)] + [str(int(x)) for x in rng.integers(1, 255, size=3)])


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def build(rng: np.random.Generator, n_users: int) -> Organisation:
    """Draw an organisation of *n_users* mailboxes."""
    company, stem = vocab.COMPANIES[int(rng.integers(len(vocab.COMPANIES)))]
    domains = (f"{stem}.com", f"{stem}.co.uk", f"{stem}-group.net")[: 2 + int(rng.integers(2))]
    offices = tuple(Office(*o[:7]) for o in vocab.OFFICES)
    office_weights = np.array([o[7] for o in vocab.OFFICES], dtype=float)
    office_weights /= office_weights.sum()

    departments = [d for d, _ in vocab.DEPARTMENTS]
    dept_weights = np.array([w for _, w in vocab.DEPARTMENTS], dtype=float)
    dept_weights /= dept_weights.sum()

    used: set[str] = set()
    people: list[dict] = []
    for i in range(n_users):
        for _ in range(50):
            given = vocab.GIVEN_NAMES[int(rng.integers(len(vocab.GIVEN_NAMES)))]
            surname = vocab.SURNAMES[int(rng.integers(len(vocab.SURNAMES)))]
            local = f"{_slug(given)}.{_slug(surname)}"
            if local not in used:
                break
            local = f"{local}{int(rng.integers(2, 99))}"
            if local not in used:
                break
        used.add(local)
        if i == 0:
            dept = "Executive"
        elif i < 1 + min(5, max(1, n_users // 40)):
            dept = "Executive"
        else:
            dept = departments[int(rng.choice(len(departments), p=dept_weights))]
        office = offices[0] if dept == "Executive" else offices[int(rng.choice(len(offices), p=office_weights))]
        people.append(
            {"given": given, "surname": surname, "local": local, "dept": dept, "office": office}
        )

    # Hierarchy: CEO; other executives report to the CEO; per department a head (reports to
    # an executive), managers (report to the head), staff (report to a manager).
    ceo_upn = f"{people[0]['local']}@{domains[0]}"
    dept_sizes: dict[str, int] = {}
    for p in people:
        dept_sizes[p["dept"]] = dept_sizes.get(p["dept"], 0) + 1
    exec_titles = iter(vocab.EXECUTIVE_TITLES)
    users: list[User] = []
    heads: dict[str, str] = {}
    managers: dict[str, list[str]] = {}
    exec_upns: list[str] = []
    for i, p in enumerate(people):
        upn = f"{p['local']}@{domains[0]}"
        dept = p["dept"]
        tags: list[str] = []
        if i == 0:
            title, manager, is_exec = "Chief Executive Officer", None, True
        elif dept == "Executive":
            title = next(exec_titles, "Executive Vice President")
            manager, is_exec = ceo_upn, True
        elif dept not in heads:
            heads[dept] = upn
            title = f"Head of {dept}"
            manager = exec_upns[int(rng.integers(len(exec_upns)))] if exec_upns else ceo_upn
            is_exec = False
            tags.append("Priority account")
        elif len(managers.setdefault(dept, [])) < 1 + dept_sizes[dept] // 8:
            managers[dept].append(upn)
            title = f"{dept} Manager"
            manager, is_exec = heads[dept], False
        else:
            pool = managers[dept] or [heads[dept]]
            title = vocab.TITLES[dept][int(rng.integers(len(vocab.TITLES[dept])))]
            manager, is_exec = pool[int(rng.integers(len(pool)))], False
        if is_exec:
            exec_upns.append(upn)
            tags.append("Priority account")
        if dept == "Finance" and "Manager" in title:
            tags.append("Priority account")
        if dept == "IT" and title in ("Systems Administrator", "Identity Engineer"):
            tags.append("Admin")
        os_platform = "macOS" if rng.random() < 0.22 else "Windows11"
        device_name = f"{'MAC' if os_platform == 'macOS' else 'LT'}-{_slug(p['surname'])[:6].upper()}{i:04d}"
        users.append(
            User(
                index=i,
                object_id=uuid_from(rng),
                upn=upn,
                display_name=f"{p['given']} {p['surname']}",
                given_name=p["given"],
                surname=p["surname"],
                department=dept,
                title=title,
                office=p["office"],
                manager=manager,
                tags=tuple(dict.fromkeys(tags)),
                is_executive=is_exec,
                device_id=rng.bytes(20).hex(),
                device_name=device_name,
                os_platform=os_platform,
                created=f"20{int(rng.integers(16, 26))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
            )
        )

    # Mail from one organisation leaves through its own few servers; free-mail providers have many.
    shared_providers = {domain for domain, _ in vocab.FREEMAIL}

    def senders(spec: list[tuple[str, str, str]], kind: str, ips_per: int = 2) -> tuple[ExternalSender, ...]:
        out, infrastructure = [], {}
        for address, display, prefix in spec:
            domain = address.split("@")[1]
            if domain not in infrastructure or domain in shared_providers:
                infrastructure[domain] = tuple(public_ip(rng, prefix or None) for _ in range(ips_per))
            out.append(ExternalSender(address, display, domain, infrastructure[domain], kind))
        return tuple(out)

    partner_specs = []
    for org_name, domain in vocab.PARTNERS:
        prefix = vocab.HOSTED_PREFIXES[int(rng.integers(len(vocab.HOSTED_PREFIXES)))]
        for _ in range(3 + int(rng.integers(6))):
            g = vocab.GIVEN_NAMES[int(rng.integers(len(vocab.GIVEN_NAMES)))]
            s = vocab.SURNAMES[int(rng.integers(len(vocab.SURNAMES)))]
            partner_specs.append((f"{_slug(g)}.{_slug(s)}@{domain}", f"{g} {s} ({org_name})", prefix))
    person_specs = []
    for _ in range(60):
        g = vocab.GIVEN_NAMES[int(rng.integers(len(vocab.GIVEN_NAMES)))]
        s = vocab.SURNAMES[int(rng.integers(len(vocab.SURNAMES)))]
        free = vocab.FREEMAIL[int(rng.integers(len(vocab.FREEMAIL)))]
        person_specs.append((f"{_slug(g)}{_slug(s)[:4]}{int(rng.integers(1, 999))}@{free[0]}", f"{g} {s}", free[1]))
    spam_specs = []
    for _ in range(120):
        word = vocab.SPAM_WORDS[int(rng.integers(len(vocab.SPAM_WORDS)))]
        tld = vocab.SPAM_TLDS[int(rng.integers(len(vocab.SPAM_TLDS)))]
        dom = f"{word}{int(rng.integers(10, 9999))}.{tld}"
        spam_specs.append((f"{vocab.SPAM_LOCALS[int(rng.integers(len(vocab.SPAM_LOCALS)))]}@{dom}", word.title(), ""))

    return Organisation(
        name=company,
        tenant_id=uuid_from(rng),
        domains=domains,
        users=tuple(users),
        offices=offices,
        partners=senders(partner_specs, "partner"),
        saas=senders([(a, d, p) for a, d, p in vocab.SAAS_SENDERS], "saas", 3),
        newsletters=senders([(a, d, "") for a, d, _ in vocab.NEWSLETTERS], "newsletter", 2),
        spammers=senders(spam_specs, "spam", 1),
        people=senders(person_specs, "person", 1),
        edge_ip=public_ip(rng, "40.107"),
        mx_host=f"{stem}-com.mail.protection.outlook.com",
    )
