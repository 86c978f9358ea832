"""Checks of paths before any work: a catalog that training will write can be created and written,
a read command's catalog exists, an output file's or folder's place exists and can be written.

Each probe leaves nothing behind (a temporary file, removed at once), so a refused command writes
nothing; each problem is one line (`CatalogError` for catalogs, `SettingError` for output paths).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from phenolab.catalog import Catalog, CatalogError
from phenolab.settings import SettingError


def as_catalog(catalog: Any) -> Catalog:
    """A `Catalog` from what the API and the CLI take: a Catalog, a path (file or folder), or None
    (PHENOLAB_CATALOG, else ./phenolab-catalog)."""
    if isinstance(catalog, Catalog):
        return catalog
    if catalog is not None and not isinstance(catalog, (str, os.PathLike)):
        raise CatalogError(f"catalog {catalog!r}: give a path (a catalog file or its folder) or a phenolab.Catalog")
    if isinstance(catalog, str) and (not catalog.strip() or "\x00" in catalog):
        raise CatalogError(f"catalog {catalog!r}: not a path")
    try:
        return Catalog(catalog)
    except (OSError, ValueError) as exc:  # a name too long for the file system, ...
        raise CatalogError(f"catalog {_short(catalog)}: {_reason(exc)}") from None


def writable_catalog(catalog: Any) -> Catalog:
    """The catalog, after checking that training can write it: the file is writable, or its folder
    exists or can be created, and SQLite can make its journal beside it. Nothing is created."""
    cat = as_catalog(catalog)
    try:
        return _writable_catalog(cat)
    except OSError as exc:
        raise CatalogError(f"catalog {_short(cat.path)}: {_reason(exc)}") from None


def _writable_catalog(cat: Catalog) -> Catalog:
    path = cat.path
    if path.is_dir():
        raise CatalogError(f"{path} is a directory, not a phenolab catalog file")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise CatalogError(f"catalog {path} cannot be written (permissions)")
        _probe(path.parent, f"catalog folder {path.parent} cannot be written (SQLite keeps its journal there)")
        return cat
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise CatalogError(f"cannot create catalog {path}: {folder} is a file, not a folder")
    _probe(folder, f"cannot create catalog {path}: {folder} cannot be written")
    return cat


def existing_catalog(catalog: Any) -> Catalog:
    """The catalog a read command reads, which must exist: a mistyped path is an error, not an
    empty listing."""
    cat = as_catalog(catalog)
    try:
        found = cat.path.is_file()
    except OSError as exc:
        raise CatalogError(f"catalog {_short(cat.path)}: {_reason(exc)}") from None
    if not found:
        where = "" if catalog is not None or "PHENOLAB_CATALOG" not in os.environ else " (PHENOLAB_CATALOG)"
        raise CatalogError(f"no catalog at {cat.path}{where}; give --catalog PATH (a catalog file or its folder); "
                           "train, sweep or reproduce make one")
    return cat


def writable_file(path: Path | str, flag: str) -> Path:
    """An output file: its folder exists and can be written, and it is not a folder itself."""
    try:
        return _writable_file(Path(path), flag)
    except OSError as exc:
        raise SettingError(f"{flag} {_short(path)}: {_reason(exc)}") from None


def _writable_file(p: Path, flag: str) -> Path:
    if p.is_dir():
        raise SettingError(f"{flag} {str(p)!r} is a folder; give a file name")
    folder = p.parent
    if not folder.is_dir():
        raise SettingError(f"{flag} {str(p)!r}: folder {str(folder)!r} does not exist")
    _probe(folder, f"{flag} {str(p)!r}: folder {str(folder)!r} cannot be written", SettingError)
    if p.exists() and not os.access(p, os.W_OK):
        raise SettingError(f"{flag} {str(p)!r} cannot be overwritten (permissions)")
    return p


def writable_folder(path: Path | str, flag: str, new: bool = False) -> Path:
    """An output folder: it exists as a folder or can be made (its parent exists and can be written);
    with `new`, it must not exist yet."""
    try:
        return _writable_folder(Path(path), flag, new)
    except OSError as exc:
        raise SettingError(f"{flag} {_short(path)}: {_reason(exc)}") from None


def _writable_folder(p: Path, flag: str, new: bool) -> Path:
    if p.exists() and not p.is_dir():
        raise SettingError(f"{flag} {str(p)!r} is a file, not a folder")
    if new and p.exists():
        return p  # the command says what is wrong with an existing target in its own words
    if p.is_dir():
        _probe(p, f"{flag} {str(p)!r} cannot be written", SettingError)
        return p
    parent = _nearest_existing(p.parent)
    if not parent.is_dir():
        raise SettingError(f"{flag} {str(p)!r}: {str(parent)!r} is a file, not a folder")
    _probe(parent, f"{flag} {str(p)!r}: {str(parent)!r} cannot be written", SettingError)
    return p


def _short(path: Any) -> str:
    text = repr(str(path))
    return text if len(text) <= 80 else text[:77] + "...'"


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, message: str, error: type[Exception] = CatalogError) -> None:
    """Create and remove a temporary file in `folder` (what permissions bits alone cannot tell:
    a read-only file system, a full quota, root on a locked folder)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise error(f"{message}: {exc.strerror or exc}") from None


def training_inputs(setting: Any, seeds: Any, catalog: Any, device: Any) -> tuple[list[int], Catalog]:
    """The Python API's `run` and `train` refuse what the CLI refuses, in its words: a setting that
    is not a Setting, seeds that are not N or integers >= 0, an unknown device, a catalog path that
    cannot be written (`catalog` False: none is used). Returns the seeds and the catalog."""
    from phenolab.engine import resolve_device
    from phenolab.settings import Setting, check_seeds

    if not isinstance(setting, Setting):
        raise SettingError(f"setting {type(setting).__name__}: give a phenolab.Setting, e.g. "
                           "phenolab.resolve_setting('gromov2023', {'task.p': 13})")
    seed_list = check_seeds(seeds, keep_order=catalog is False)  # engine.train keeps the replicas' order
    if not isinstance(device, (str, torch.device)):
        raise SettingError(f"device {device!r}: give 'auto', 'cpu' or 'cuda[:N]'")
    if isinstance(device, str):
        resolve_device(device)
    return seed_list, (writable_catalog(catalog) if catalog is not False else None)
