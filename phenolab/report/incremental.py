"""Building a report folder incrementally without a reader ever seeing a half-built one.

Every file of the site has a key: a digest of what it shows (the catalog rows, notes and files it
is made from, the code and templates that render it). The manifest (`.phenolab-report`, JSON)
records each file's key, size and modification time. A build

- returns at once when every key, every file and the set of files are what the manifest says;
- otherwise fills a staging folder beside the site: files whose key is unchanged are hard links
  to the current ones (same inode, same modification time: nothing is rewritten), the others are
  written anew; then the staging folder and the site are exchanged in one rename (Linux
  `renameat2(RENAME_EXCHANGE)`; elsewhere two renames, a moment without a site but never a
  half-built one), and the previous folder is removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = ".phenolab-report"  # the manifest; a folder holding it may be replaced by a newer report
FORMAT = 1


@dataclass
class Output:
    """One file of the site: where it goes, its key, and how to write it (given the path)."""

    name: str
    key: str
    write: Callable[[Path], None]


class Previous:
    """The site as the last build left it (nothing when there is none, or `rebuild`)."""

    def __init__(self, target: Path, rebuild: bool = False) -> None:
        self.target = target
        self.files: dict[str, dict[str, Any]] = {}
        self.figures: dict[str, dict[str, Any]] = {}
        if rebuild:
            return
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((target / MARKER).read_text())
            if isinstance(manifest, dict) and manifest.get("format") == FORMAT:
                self.files = dict(manifest.get("files") or {})
                self.figures = dict(manifest.get("figures") or {})

    def current(self, name: str, key: str) -> bool:
        """The file is in the site, unchanged since the last build, which wrote it from `key`."""
        entry = self.files.get(name)
        if entry is None or entry.get("key") != key:
            return False
        try:
            st = (self.target / name).stat()
        except OSError:
            return False
        return st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")

    def figure(self, name: str, key: str) -> bool | None:
        """Whether the last build made figure `name` from `key` (None: it did not try, or the key differs)."""
        entry = self.figures.get(name)
        if entry is None or entry.get("key") != key:
            return None
        made = bool(entry.get("made"))
        return made if not made or self.current(name, key) else None

    def exactly(self, names: set[str]) -> bool:
        """The site holds these files and no others (besides the manifest)."""
        if set(self.files) != names:
            return False
        on_disk = set()
        for root, _, files in os.walk(self.target):
            rel = Path(root).relative_to(self.target)
            on_disk.update((rel / f).as_posix() for f in files)
        return on_disk - {MARKER} == names


class Staging:
    """A new site folder beside the target, filled from outputs, then swapped in."""

    def __init__(self, target: Path, previous: Previous, build: dict[str, Any] | None = None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target, self.previous = target, previous
        self.build = build or {}  # how the report is built (catalog, options): what a refresh repeats
        self.path = Path(tempfile.mkdtemp(prefix=".report-", dir=target.parent))
        self.path.chmod(0o755)  # mkdtemp makes it private; a report is meant to be read and served
        self.files: dict[str, dict[str, Any]] = {}
        self.figures: dict[str, dict[str, Any]] = {}
        self.written: list[str] = []

    def add(self, out: Output) -> None:
        """Link the current file if its key is unchanged, else write it."""
        dest = self.path / out.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not (self.previous.current(out.name, out.key) and _link(self.target / out.name, dest)):
            out.write(dest)
            self.written.append(out.name)
        self.record(out.name, out.key)

    def record(self, name: str, key: str) -> None:
        st = (self.path / name).stat()
        self.files[name] = {"key": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def figure(self, name: str, key: str, make: Callable[[Path], bool]) -> bool:
        """A figure: linked when the last build made it from the same key, else made (it may not be)."""
        dest = self.path / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        made = self.previous.figure(name, key)
        if made and not _link(self.target / name, dest):
            made = None
        if made is None:
            made = make(dest)
            if made:
                self.written.append(name)
        if made:
            self.record(name, key)
        self.figures[name] = {"key": key, "made": bool(made)}
        return bool(made)

    def commit(self) -> None:
        """Write the manifest, put the new folder in place and remove the previous one."""
        manifest = {"format": FORMAT, "files": self.files, "figures": self.figures, "build": self.build,
                    "note": "built by `phenolab report`; this folder is replaced on the next build"}
        (self.path / MARKER).write_text(json.dumps(manifest, indent=0, sort_keys=True) + "\n")
        old = swap_in(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _link(src: Path, dest: Path) -> bool:
    """A hard link (a copy keeping the modification time where links are not possible)."""
    try:
        os.link(src, dest)
    except FileNotFoundError:
        return False  # a concurrent build replaced the site meanwhile: the caller writes it anew
    except OSError:
        try:
            shutil.copy2(src, dest)
        except OSError:
            return False
    return True


def swap_in(new: Path, target: Path) -> Path | None:
    """Put folder `new` at `target` atomically where the OS allows; returns the previous folder's
    new path (to be removed), or None if there was none."""
    if not target.exists():
        new.rename(target)
        return None
    if _exchange(new, target):
        return new
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(old)
    new.rename(target)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Linux renameat2(RENAME_EXCHANGE): both names swap in one step; False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
