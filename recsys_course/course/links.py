"""Where the course lives on GitHub, written in one place and copied everywhere by one command.

The one place is ``pyproject.toml``: ``[project.urls] Repository`` (the GitHub address) and
``[tool.recsys-course] ref`` (the branch or release tag that the Colab badges open and the Colab setup cells
check out). ``recsys-course sync-links`` rewrites every copy from it:

* each notebook's Open-in-Colab badge (first cell) and its Colab setup cell (second cell, :data:`SETUP_CELL`);
* the README's badges;
* the badge example in CONTRIBUTING.md.

``recsys-course sync-links --check`` changes nothing and lists the copies that disagree (a test runs it). A fork
edits the two lines in ``pyproject.toml`` and runs ``recsys-course sync-links``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_DIR

#: The Colab setup cell of every notebook. Safe to run again: it clones only if the folder is missing and
#: installs only if the package is not importable yet (a restarted runtime keeps both).
SETUP_CELL = '''\
# On Colab: fetch the course and install its package (safe to run again). Elsewhere this cell does nothing.
import importlib.util
import subprocess
import sys
from pathlib import Path

REPOSITORY, REF = "{repository}", "{ref}"  # written by `recsys-course sync-links`
COURSE_DIR = Path("/content/recsys-course")
if "google.colab" in sys.modules:
    if not (COURSE_DIR / ".git").exists():  # to update a clone later: !git -C /content/recsys-course pull
        subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", REF, REPOSITORY, str(COURSE_DIR)],
                       check=True)
    if importlib.util.find_spec("recsys_course") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(COURSE_DIR)], check=True)
        sys.path.insert(0, str(COURSE_DIR))'''

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w./-]+?/notebooks/")


@dataclass(frozen=True)
class Location:
    """The course's address: ``https://github.com/<owner>/<name>`` and the ref the badges open."""

    repository: str
    ref: str

    @property
    def slug(self) -> str:
        """``owner/name``."""
        return self.repository.removeprefix("https://github.com/").strip("/")

    def badge_prefix(self) -> str:
        """What every Colab link starts with, up to the notebook's file name."""
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.ref}/notebooks/"

    def setup_cell(self) -> str:
        return SETUP_CELL.format(repository=self.repository, ref=self.ref)


def location(pyproject: Path | None = None) -> Location:
    """Read the address from ``pyproject.toml`` (the repository's, by default)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = Path(pyproject or REPO_DIR / "pyproject.toml")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    repository = data.get("project", {}).get("urls", {}).get("Repository", "")
    ref = data.get("tool", {}).get("recsys-course", {}).get("ref", "")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository.rstrip("/")):
        raise ValueError(f"{path}: [project.urls] Repository must be https://github.com/<owner>/<name>, got "
                         f"{repository!r}")
    if not re.fullmatch(r"[\w./-]+", ref):
        raise ValueError(f"{path}: [tool.recsys-course] ref must name a branch or a tag, e.g. \"main\", got {ref!r}")
    return Location(repository.rstrip("/"), ref)


def sync(root: Path | None = None, check: bool = False) -> list[str]:
    """Rewrite every copy of the address under ``root`` (or, with ``check``, only list the files that differ).

    Returns the paths (relative to ``root``) that were, or would be, changed.
    """
    import nbformat

    root = Path(root or REPO_DIR)
    where = location(root / "pyproject.toml")
    changed = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title, setup = nb.cells[0], nb.cells[1]
        new_title = _BADGE.sub(where.badge_prefix(), title.source)
        if new_title != title.source or setup.source != where.setup_cell():
            changed.append(str(path.relative_to(root)))
            if not check:
                title.source, setup.source = new_title, where.setup_cell()
                nbformat.write(nb, path)
    for name in ("README.md", "CONTRIBUTING.md"):
        path = root / name
        text = path.read_text(encoding="utf-8")
        new = _BADGE.sub(where.badge_prefix(), text)
        if new != text:
            changed.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
    return changed
