"""Shared files of SharePoint, OneDrive and Teams, kept as a folder tree the workbench can act on.

Layout (under ``<tenant>/files/``)::

    <Workload>/<site, drive or team>/<path>     a file in place (Workload: SharePoint, OneDrive, Teams)
    .quarantine/<sha256>                        a blocked file's content (one per hash)
    .quarantine/<sha256>.json                   where it came from: {"sha256", "size", "places": [...]}

A file is addressed by :class:`FileRef` (workload, site, path) or by its SHA256.

**Blocking** (Safe Attachments for SharePoint, OneDrive and Teams: the file can no longer be
opened or downloaded) records the place in the sidecar first, then renames the file into the
quarantine (atomic, same file system). **Releasing** puts the content back at its place, then
removes the place from the sidecar. A place listed in a sidecar is blocked, whatever the
moment a crash stopped either step, so :meth:`FileStore.read` refuses it; both operations are
idempotent (``AlreadyInDestination`` when there is nothing to do, ``NotFound`` when there is
no such file), so an interrupted run is simply run again.

Paths are checked: no ``..``, no absolute paths, no symbolic link leading out of the root.

>>> FileRef.parse("SharePoint/Finance/Shared Documents/AP/invoice.docm").site
'Finance'
>>> site_of("https://contoso-my.sharepoint.com/personal/ann_contoso_com")
'ann_contoso_com'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.enums import FileWorkload
from workbench.errors import ConflictError, InputError, NotFound
from workbench.mail.base import Outcome

QUARANTINE = ".quarantine"
_TMP = ".wb-tmp-"
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class FileBlocked(ConflictError):
    """The file is blocked (quarantined): it cannot be opened or downloaded."""


class UnsafePath(InputError):
    """A path that would leave the file store (``..``, absolute, a link outside the root)."""


def check_sha256(value: str) -> str:
    """The hash lower-cased; a one-line error unless it is 64 hex digits."""
    sha = (value or "").strip().lower()
    if not _SHA.match(sha):
        raise InputError(f"{value!r} is not a SHA256 (64 hex digits); copy it from the content malware view")
    return sha


def _part(value: str, what: str) -> str:
    text = (value or "").strip().replace("\\", "/")
    if not text:
        raise InputError(f"the file's {what} is empty; give workload, site and path")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UnsafePath(f"{what} {value!r} is absolute; give it relative to its site, drive or team")
    parts = PurePosixPath(text).parts
    if any(p in ("..", ".") for p in text.split("/")) or "\x00" in text:
        raise UnsafePath(f"{what} {value!r} leaves its folder ('..' or '.'); give a plain path")
    if parts and parts[0].startswith((QUARANTINE, _TMP)):
        raise UnsafePath(f"{what} {value!r} names the store's own quarantine; give a file's own path")
    return "/".join(p for p in parts if p)


@dataclass(frozen=True)
class FileRef:
    """Where a file lives: its workload, its site (or OneDrive drive, or team) and its path there."""

    workload: FileWorkload
    site: str
    path: str

    @classmethod
    def of(cls, workload: FileWorkload | str, site: str, path: str) -> FileRef:
        """Checked: a known workload, one plain site segment, a relative path without ``..``."""
        try:
            w = FileWorkload(workload)
        except ValueError:
            raise InputError(f"unknown workload {workload!r}; use one of "
                             f"{', '.join(x.value for x in FileWorkload)}") from None
        s = _part(site, "site")
        if "/" in s:
            raise UnsafePath(f"site {site!r} is more than one folder; give the site, drive or team name")
        return cls(w, s, _part(path, "path"))

    @classmethod
    def parse(cls, key: str) -> FileRef:
        """From ``Workload/site/path`` (what :attr:`key` gives)."""
        bits = (key or "").strip().split("/", 2)
        if len(bits) < 3:
            raise InputError(f"{key!r} is not a file place; write it as Workload/site/path")
        return cls.of(*bits)

    @property
    def key(self) -> str:
        return f"{self.workload.value}/{self.site}/{self.path}"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.key


def site_of(site_url: str) -> str:
    """The site (or drive, or team) folder name of a SiteUrl: its last path segment."""
    tail = (site_url or "").rstrip("/").rsplit("/", 1)[-1]
    return tail.split("?", 1)[0]


def ref_for_row(workload: str, site_url: str, folder_path: str, file_name: str) -> FileRef | None:
    """The place of a FileMaliciousContentInfo row (FolderPath is ``<SiteUrl>/<folders>``), or None
    when the row does not say where the file is."""
    if not (workload and site_url and file_name):
        return None
    folder = folder_path or ""
    base = site_url.rstrip("/")
    rel = folder[len(base):].strip("/") if folder.startswith(base) else ""
    try:
        return FileRef.of(workload, site_of(site_url), f"{rel}/{file_name}" if rel else file_name)
    except InputError:
        return None


@dataclass(frozen=True)
class StoredFile:
    """A file in the store: its place, hash and size, and whether it is blocked."""

    ref: FileRef
    sha256: str
    size: int
    blocked: bool = False
    blocked_at: str = ""  # ISO time, when blocked


@dataclass(frozen=True)
class FileResult:
    """What one block or release did to one place (Outcome as in the action center, §4.6)."""

    ref: FileRef
    sha256: str
    outcome: Outcome
    reason: str = ""


def _sha_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileStore:
    """A folder tree of shared files with a quarantine (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._hashes: dict[tuple[str, int, int], str] = {}

    @classmethod
    def for_tenant(cls, tenant: Any) -> FileStore:
        return cls(tenant.files_dir)

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    @property
    def quarantine(self) -> Path:
        return self.root / QUARANTINE

    # ------------------------------------------------------------------ paths

    def _real_root(self) -> Path:
        return self.root.resolve()

    def path(self, ref: FileRef) -> Path:
        """The file's path on disk; :class:`UnsafePath` if a link takes it outside the root."""
        p = self.root / ref.workload.value / ref.site / ref.path
        real = p.resolve()
        try:
            real.relative_to(self._real_root())
        except ValueError:
            raise UnsafePath(f"{ref.key} leads outside the file store (a symbolic link); remove the link") from None
        return p

    def _qfile(self, sha: str) -> Path:
        return self.quarantine / sha

    def _sidecar(self, sha: str) -> Path:
        return self.quarantine / f"{sha}.json"

    # ------------------------------------------------------------------ reading

    def _hash(self, path: Path) -> str:
        st = path.stat()
        k = (str(path), st.st_size, st.st_mtime_ns)
        if k not in self._hashes:
            self._hashes[k] = _sha_of(path)
        return self._hashes[k]

    def _walk(self) -> Iterator[tuple[FileRef, Path]]:
        for w in FileWorkload:
            top = self.root / w.value
            if not top.is_dir():
                continue
            for site in sorted(p for p in top.iterdir() if p.is_dir() and not p.is_symlink()):
                for dirpath, dirs, names in os.walk(site):
                    dirs[:] = sorted(d for d in dirs if not (Path(dirpath) / d).is_symlink())
                    for n in sorted(names):
                        full = Path(dirpath) / n
                        if n.startswith(_TMP) or full.is_symlink() or not full.is_file():
                            continue
                        yield FileRef(w, site.name, full.relative_to(site).as_posix()), full

    def list(self, workload: FileWorkload | str | None = None, site: str | None = None) -> list[StoredFile]:
        """Files in place (not blocked), optionally of one workload and site, by place."""
        w = FileWorkload(workload) if workload else None
        blocked = {p.ref for p in self.blocked()}
        return [StoredFile(ref, self._hash(path), path.stat().st_size)
                for ref, path in self._walk()
                if (w is None or ref.workload is w) and (site is None or ref.site == site) and ref not in blocked]

    def _sidecars(self) -> Iterator[dict]:
        if not self.quarantine.is_dir():
            return
        for f in sorted(self.quarantine.glob("*.json")):
            try:
                data = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(data, dict) and _SHA.match(str(data.get("sha256", ""))):
                yield data

    def _load(self, sha: str) -> dict:
        f = self._sidecar(sha)
        if not f.exists():
            return {"sha256": sha, "size": 0, "places": []}
        return json.loads(f.read_text())

    def _save(self, sha: str, data: dict) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        f = self._sidecar(sha)
        if not data["places"]:
            f.unlink(missing_ok=True)
            return
        tmp = self.quarantine / f"{_TMP}{uuid.uuid4().hex}.json"
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, f)

    @staticmethod
    def _places(data: dict) -> list[tuple[FileRef, str]]:
        out = []
        for p in data.get("places", []):
            try:
                out.append((FileRef.of(p["workload"], p["site"], p["path"]), str(p.get("blocked", ""))))
            except (InputError, KeyError, TypeError):
                continue
        return out

    def blocked(self) -> list[StoredFile]:
        """Every blocked place, with its hash and when it was blocked."""
        return [StoredFile(ref, d["sha256"], int(d.get("size") or 0), True, at)
                for d in self._sidecars() for ref, at in self._places(d)]

    def blocked_hash(self, ref: FileRef) -> str | None:
        """The hash of the file blocked at *ref*, or None when that place is not blocked."""
        for d in self._sidecars():
            if any(r == ref for r, _ in self._places(d)):
                return d["sha256"]
        return None

    def state(self, ref: FileRef) -> str | None:
        """``"blocked"``, ``"in place"``, or None when there is no such file."""
        if self.blocked_hash(ref) is not None:
            return "blocked"
        p = self.path(ref)
        return "in place" if p.is_file() and not p.is_symlink() else None

    def read(self, ref: FileRef) -> bytes:
        """The file's bytes; :class:`FileBlocked` if blocked, :class:`NotFound` if absent."""
        if self.blocked_hash(ref) is not None:
            raise FileBlocked(f"{ref.key} is blocked (quarantined as malicious); release it first if it is safe")
        p = self.path(ref)
        if not p.is_file():
            raise NotFound(f"no file {ref.key} in the file store; list them with `workbench files list`")
        return p.read_bytes()

    def locate(self, sha256: str) -> list[FileRef]:
        """Every place holding a file with this hash: in place or blocked."""
        sha = check_sha256(sha256)
        here = [ref for ref, path in self._walk() if self._hash(path) == sha]
        gone = [ref for ref, _ in self._places(self._load(sha))]
        return list(dict.fromkeys([*here, *gone]))

    # ------------------------------------------------------------------ writing

    def write(self, ref: FileRef, content: bytes) -> Path:
        """Put *content* at *ref* (atomic; replaces a file there). Used to fill a tenant."""
        p = self.path(ref)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.path(ref)  # the folders just made must still be inside the root
        tmp = p.parent / f"{_TMP}{uuid.uuid4().hex}"
        try:
            tmp.write_bytes(content)
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
        return p

    def block(self, refs: Sequence[FileRef], *, expected: Sequence[str | None] | None = None,
              at: datetime | None = None) -> list[FileResult]:
        """Quarantine each place (one result per ref, in order). With *expected* hashes, a file
        whose content differs is left alone (``Failure``)."""
        when = (at or datetime.now(UTC)).isoformat(timespec="seconds")
        wants = list(expected) if expected is not None else [None] * len(refs)
        return [self._safely(self._block_one, ref, check_sha256(w) if w else None, when) for ref, w in zip(refs, wants)]

    @staticmethod
    def _safely(op: Any, ref: FileRef, *args: Any) -> FileResult:
        """One place's result: an unsafe place (a link out of the root) or an OS error fails that place only."""
        try:
            return op(ref, *args)
        except (UnsafePath, OSError) as exc:
            return FileResult(ref, "", Outcome.FAILURE, str(exc).splitlines()[0][:300])

    def block_hash(self, sha256: str, *, at: datetime | None = None) -> list[FileResult]:
        """Quarantine every place holding this hash (``NotFound`` for none: a result without a place)."""
        sha = check_sha256(sha256)
        refs = self.locate(sha)
        return self.block(refs, expected=[sha] * len(refs), at=at)

    def _block_one(self, ref: FileRef, want: str | None, when: str) -> FileResult:
        known = self.blocked_hash(ref)
        p = self.path(ref)
        present = p.is_file() and not p.is_symlink()
        if known is not None and (not present or self._hash(p) == known):
            if present:  # a block that stopped between its two steps: finish it
                self._quarantine_content(p, known)
            return FileResult(ref, known, Outcome.ALREADY_IN_DESTINATION, "already blocked")
        if not present:
            return FileResult(ref, want or "", Outcome.NOT_FOUND, "no such file")
        sha = self._hash(p)
        if want and sha != want:
            return FileResult(ref, sha, Outcome.FAILURE, f"its content changed (SHA256 {sha[:12]}…); not blocked")
        data = self._load(sha)
        data["size"] = p.stat().st_size
        data["places"] = [*data.get("places", []), {"workload": ref.workload.value, "site": ref.site,
                                                      "path": ref.path, "blocked": when}]
        self._save(sha, data)  # 1. intent: the place is blocked from now on
        self._quarantine_content(p, sha)  # 2. the content leaves the place
        return FileResult(ref, sha, Outcome.SUCCESS)

    def _quarantine_content(self, p: Path, sha: str) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        os.replace(p, self._qfile(sha))  # identical content may replace identical content

    def release(self, refs: Sequence[FileRef]) -> list[FileResult]:
        """Put each blocked place's file back (one result per ref, in order)."""
        return [self._safely(self._release_one, ref) for ref in refs]

    def release_hash(self, sha256: str) -> list[FileResult]:
        """Release every place blocked with this hash."""
        sha = check_sha256(sha256)
        return self.release([ref for ref, _ in self._places(self._load(sha))])

    def _release_one(self, ref: FileRef) -> FileResult:
        sha = self.blocked_hash(ref)
        p = self.path(ref)
        present = p.is_file() and not p.is_symlink()
        if sha is None:
            return FileResult(ref, self._hash(p) if present else "", Outcome.ALREADY_IN_DESTINATION if present
                              else Outcome.NOT_FOUND, "not blocked" if present else "no such file")
        data = self._load(sha)
        others = [r for r, _ in self._places(data) if r != ref]
        q = self._qfile(sha)
        if not present:
            if not q.is_file():
                return FileResult(ref, sha, Outcome.FAILURE, f"quarantined content {sha[:12]}… is missing")
            if p.exists() or p.is_symlink():
                return FileResult(ref, sha, Outcome.FAILURE, "something else is at its place now; not released")
            p.parent.mkdir(parents=True, exist_ok=True)
            self.path(ref)
            if others:  # other places keep the quarantined copy
                tmp = p.parent / f"{_TMP}{uuid.uuid4().hex}"
                shutil.copyfile(q, tmp)
                os.replace(tmp, p)
            else:
                os.replace(q, p)
            outcome = Outcome.SUCCESS
        else:
            outcome = Outcome.ALREADY_IN_DESTINATION  # a release that stopped before its second step
        data["places"] = [x for x in data["places"] if (x.get("workload"), x.get("site"), x.get("path"))
                          != (ref.workload.value, ref.site, ref.path)]
        self._save(sha, data)
        if not data["places"] and q.is_file() and present:
            q.unlink()
        return FileResult(ref, sha, outcome, "" if outcome is Outcome.SUCCESS else "already released")

    def fill(self, files: Iterable[tuple[FileRef, bytes]]) -> int:
        """Write many files (a generator filling a new tenant); returns how many."""
        n = 0
        for ref, content in files:
            self.write(ref, content)
            n += 1
        return n


__all__ = ["FileStore", "FileRef", "StoredFile", "FileResult", "FileBlocked", "UnsafePath", "QUARANTINE",
           "check_sha256", "site_of", "ref_for_row"]
