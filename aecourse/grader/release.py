"""``aecourse release``: regenerate ``exercises/`` from ``solutions/`` with nbgrader.

``nbgrader generate_assignment`` for each assignment (which also registers it in the
gradebook), then the released notebooks' outputs are stripped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["course_root", "strip_outputs", "release", "main"]


def course_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding ``nbgrader_config.py``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    raise SystemExit(f"aecourse: no nbgrader_config.py in {here} or above; run me in the course.")


def strip_outputs(path: Path) -> None:
    """Remove outputs and execution counts from the notebook at ``path`` (in place)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)


def release(root: Path, assignments=None) -> None:
    """``nbgrader generate_assignment`` for every ``solutions/<ps>``, then strip outputs."""
    names = assignments or sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir()
                                  and list(p.glob("*.ipynb")))
    nbgrader = Path(sys.executable).with_name("nbgrader")
    command = [str(nbgrader)] if nbgrader.exists() else [sys.executable, "-m", "nbgrader"]
    # nbgrader runs `alembic` (next to it in the venv) when it creates a gradebook
    env = {**os.environ, "PATH": f"{nbgrader.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in names:
        print(f"aecourse release: {name}", flush=True)
        subprocess.run([*command, "generate_assignment", name, "--force", "--create"],
                       cwd=root, check=True, env=env)
        for notebook in sorted((root / "exercises" / name).glob("*.ipynb")):
            strip_outputs(notebook)


def main(argv=None) -> int:
    """``aecourse release [PS ...]``."""
    parser = argparse.ArgumentParser(prog="aecourse release",
                                     description="Regenerate exercises/ from solutions/.")
    parser.add_argument("assignments", nargs="*", help="e.g. ps1 ps2 (default: all)")
    args = parser.parse_args(argv)
    release(course_root(), args.assignments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
