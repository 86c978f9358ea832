"""The `phenolab` command's entry point: `phenolab`, `--help` and `--version` are answered without
importing torch (which alone takes a second or more), everything else goes to `phenolab.cli.main`.

The top-level help is the full CLI's own text, kept in phenolab's cache after the first time it is
printed, under a key of everything it depends on: phenolab's version and source files, the
installed plug-ins, the terminal width and whether it is in colour. It lives outside the
`phenolab` package because importing any module of a package first imports the package, and
`phenolab/__init__.py` loads torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

HELP = ((), ("--help",), ("-h",))
VERSION = (("--version",), ("-V",))


def main() -> None:
    args = tuple(sys.argv[1:])
    if args in VERSION:
        print(f"phenolab {metadata.version('phenolab')} (torch {metadata.version('torch')})")
        return
    if args in HELP:
        cached = help_path()
        if cached is not None and cached.is_file():
            sys.stdout.write(cached.read_text(encoding="utf-8"))
            return
        text = full_help()
        sys.stdout.write(text)
        if cached is not None:
            _write(cached, text)
        return
    from phenolab.cli import main as cli_main

    cli_main()


def full_help() -> str:
    """The full CLI's top-level help, as it prints it on this terminal."""
    from phenolab.cli import app

    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    env = {"COLUMNS": str(_width()), **({"FORCE_COLOR": "1"} if colour else {})}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            app(["--help"], prog_name="phenolab")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out.getvalue()


def help_path() -> Path | None:
    """Where this terminal's help text is cached; None when the source cannot be read."""
    try:
        dist = metadata.distribution("phenolab")
        plugins = sorted(f"{e.name}={e.value}" for e in metadata.entry_points(group="phenolab.plugins"))
        package = Path(__file__).resolve().parent / "phenolab"  # installed beside it, or the source tree
        sources = sorted((p.relative_to(package).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
                         for p in package.rglob("*.py"))
    except (OSError, metadata.PackageNotFoundError, ValueError):
        return None
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    key = repr((dist.version, plugins, sources, _width(), colour)).encode()
    root = Path(os.environ.get("PHENOLAB_CACHE") or Path.home() / ".cache" / "phenolab")
    return root / "help" / f"{hashlib.sha256(key).hexdigest()[:24]}.txt"


def _width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def _write(path: Path, text: str) -> None:
    """Atomically; a cache that cannot be written is skipped (the help was printed anyway)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
