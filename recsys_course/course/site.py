"""A static HTML site of an executed course: one page per notebook, a syllabus index and the leaderboard.

:func:`build_site` reads the executed notebooks of a build folder (``build/<profile>/``, written by
``recsys-course run``; the committed ``notebooks/`` are executed too) and writes into ``<folder>/site/``:

* ``NN_name.html`` — each notebook rendered with nbconvert's ``lab`` template, images embedded (they are
  base64 in the outputs already), with links to the index and the previous and next notebook at the top and
  the bottom. The ``record(...)`` outputs (machine-readable numbers for the tests and the leaderboard, which
  no template can display) are left out.
* ``index.html`` — the syllabus: number, title (the notebook's ``# NN · Title`` heading), its first
  paragraph of prose, the run time (papermill's, else ``metadata.recsys_course.lesson_seconds``) and a
  mark on notebooks that were never executed or that failed; which folder and profile were rendered.
* ``leaderboard.html`` — ``leaderboard.md`` as HTML and ``leaderboard.png`` (copied next to it), or how to
  make them when there are none.

The output depends on the inputs only (no clock), so building twice gives the same bytes.

**Offline.** The pages work without a network, with one exception: nbconvert's ``lab`` template loads
MathJax 2.7 (and require.js, used by widget and JavaScript outputs, which the course has none of) from
cdnjs.cloudflare.com, and has no option to leave the CDN out. Offline, formulas therefore show as their TeX
source (``$\\hat r_{ui}$``), which stays readable, and the Colab badges show their alt text. nbconvert's
only switch is ``HTMLExporter.mathjax_url``, which could point at a self-hosted MathJax 2.7 (the template
configures MathJax with the version 2 API, so MathJax 3 will not do); no MathJax ships with the course's
dependencies, so this module keeps the default.
"""
from __future__ import annotations

import copy
import html
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_DIR
from ..record import MIME
from .runner import NOTEBOOK_NAME

RUN_FIRST = "run `make course` (or `recsys-course run`) first"
_WARNINGS = {"not executed": "This notebook was not executed: it has no outputs.",
             "failed": "This notebook failed while it was executed: its outputs stop at the error."}
SUMMARY_CHARS = 220

# The notebook template: nbconvert's lab template with the navigation bar at the top and the bottom.
_NOTEBOOK_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block extra_css %}<style type="text/css">""" + """
.site-nav { display: flex; flex-wrap: wrap; gap: 0.4em 1.6em; padding: 0.7em 1em;
  font-family: var(--jp-ui-font-family); font-size: 0.95em; background: var(--jp-layout-color2); }
.site-nav a { text-decoration: none; }
.site-nav .next { margin-left: auto; }
.site-warning { padding: 0.7em 1em; background: #fff3cd; color: #664d03; font-family: var(--jp-ui-font-family); }
</style>{% endblock extra_css %}
{% block body_header %}{{ super() }}{{ resources.site_header }}{% endblock body_header %}
{% block body_footer %}{{ resources.site_footer }}{{ super() }}{% endblock body_footer %}
"""

_STYLE = """body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 72em;
  margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #1f2328; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.35em 0.7em; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; white-space: nowrap; }
.mark { color: #9a6700; font-weight: 600; }
.note { color: #59636e; font-size: 0.9em; }
img { max-width: 100%; }"""


@dataclass(frozen=True)
class Notebook:
    """What the index says about one executed notebook."""

    path: Path
    number: str
    title: str
    summary: str
    seconds: float | None
    seconds_from: str  # where the run time comes from, for the index's tooltip
    status: str  # "executed", "not executed" or "failed"
    profile: str | None
    executed_on: str | None  # papermill's end date, YYYY-MM-DD

    @property
    def href(self) -> str:
        return self.path.with_suffix(".html").name

    @property
    def label(self) -> str:
        return f"{self.number} · {self.title}"


def build_site(build_dir: Path | str, out_dir: Path | str | None = None, *,
               title: str = "Recommender systems course") -> Path:
    """Render the executed notebooks of ``build_dir`` as a static site in ``out_dir`` (default
    ``build_dir/site``) and return the path of its ``index.html``.

    Raises ``FileNotFoundError`` if ``build_dir`` does not exist or holds no executed ``NN_name.ipynb``.
    """
    import nbformat

    build_dir = Path(build_dir)
    out_dir = Path(out_dir) if out_dir is not None else build_dir / "site"
    if not build_dir.is_dir():
        raise FileNotFoundError(f"{build_dir} does not exist: {RUN_FIRST} to execute the notebooks into it")
    paths = sorted(p for p in build_dir.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if not paths:
        raise FileNotFoundError(f"no executed notebooks (NN_name.ipynb) in {build_dir}: {RUN_FIRST}")
    nodes = [nbformat.read(p, as_version=4) for p in paths]
    notebooks = [describe(p, nb) for p, nb in zip(paths, nodes)]
    if all(n.status == "not executed" for n in notebooks):
        raise FileNotFoundError(f"none of the {len(paths)} notebooks in {build_dir} was ever executed (no "
                                f"outputs): {RUN_FIRST}")

    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = _exporter()
    for i, (nb, node) in enumerate(zip(notebooks, nodes)):
        prev = notebooks[i - 1] if i > 0 else None
        nxt = notebooks[i + 1] if i + 1 < len(notebooks) else None
        nav = _nav(title, prev, nxt)
        warning = f'<p class="site-warning">{_WARNINGS[nb.status]}</p>' if nb.status in _WARNINGS else ""
        body, _ = exporter.from_notebook_node(_without_records(node), resources={
            "metadata": {"name": f"{nb.label} · {title}"},
            "site_header": f'<nav class="site-nav">{nav}</nav>{warning}',
            "site_footer": f'<nav class="site-nav">{nav}</nav>'})
        _write(out_dir / nb.href, body)
    _write(out_dir / "index.html", _index_page(notebooks, build_dir, title))
    _write(out_dir / "leaderboard.html", _leaderboard_page(build_dir, out_dir, title))
    return out_dir / "index.html"


def describe(path: Path, nb) -> Notebook:
    """Number, title, summary, run time and status of an (executed) notebook node."""
    heading, summary = _heading_and_summary(nb)
    number = path.name[:2]
    stem_title = path.stem[3:].replace("_", " ").capitalize()
    title = re.sub(r"^\d+\s*[·.:\-–—]\s*", "", heading).strip() if heading else stem_title
    papermill = nb.metadata.get("papermill", {})
    seconds, seconds_from = papermill.get("duration"), "papermill's measurement of this run"
    if seconds is None:
        seconds = nb.metadata.get("recsys_course", {}).get("lesson_seconds")
        seconds_from = "the lesson run time recorded in the notebook (metadata.recsys_course.lesson_seconds)"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    executed = any(cell.get("outputs") or cell.get("execution_count") for cell in code)
    status = "failed" if papermill.get("exception") else "executed" if executed else "not executed"
    return Notebook(path=path, number=number, title=title or stem_title, summary=summary,
                    seconds=None if seconds is None else float(seconds), seconds_from=seconds_from, status=status,
                    profile=(papermill.get("parameters") or {}).get("profile"),
                    executed_on=(papermill.get("end_time") or "")[:10] or None)


def _heading_and_summary(nb) -> tuple[str, str]:
    """The first ``# `` heading and the first paragraph of prose after it (plain text, shortened).

    Headings, badge and image lines, code blocks and tables are skipped; a bold label that introduces a list
    (``**Learning objectives — you will:**``) is left out and the list's items make the paragraph."""
    heading = ""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        if not heading:
            match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
            if not match:
                continue
            heading = match.group(1).strip()
            text = text[match.end():]
        for block in re.split(r"\n\s*\n", text):
            lines = [ln.strip() for ln in block.strip().splitlines()]
            lines = [ln for ln in lines if ln and not ln.startswith("#") and not _IMAGE_LINE.match(ln)]
            if not lines or lines[0].startswith(("```", "~~~", "|", "<", "$$")):
                continue
            if len(lines) > 1 and re.fullmatch(r"\*\*[^*]+:\*\*", lines[0]) and _LIST_ITEM.match(lines[1]):
                lines = lines[1:]
            prose = _plain(" ".join(_LIST_ITEM.sub("", ln) for ln in lines))
            prose = prose[:1].upper() + prose[1:]
            return heading, textwrap.shorten(prose, width=SUMMARY_CHARS, placeholder=" …")
    return heading, ""


_IMAGE_LINE = re.compile(r"^(\[?!\[[^\]]*\]\([^)]*\)(\]\([^)]*\))?\s*)+$")  # badges: [![alt](img)](link)
_LIST_ITEM = re.compile(r"^([-*+]|\d+[.)])\s+")


def _plain(text: str) -> str:
    """Markdown inline markup to plain text: links keep their text; bold, italics and code lose their marks."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("**", "").replace("`", "")
    return re.sub(r"(?<![\w*])\*(\S[^*]*?)\*(?![\w*])", r"\1", text)


def _without_records(nb):
    """A copy of ``nb`` without the ``record(...)`` outputs (their MIME type has no HTML rendering)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("data") and set(o["data"]) <= {MIME})]
    return nb


def _exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", template_file="site.html.j2",
                        extra_loaders=[DictLoader({"site.html.j2": _NOTEBOOK_TEMPLATE})])


def _nav(title: str, prev: Notebook | None, nxt: Notebook | None) -> str:
    links = [f'<a href="index.html">↑ {html.escape(title)}</a>',
             '<a href="leaderboard.html">Leaderboard</a>']
    if prev:
        links.append(f'<a class="prev" rel="prev" href="{prev.href}">← {html.escape(prev.label)}</a>')
    if nxt:
        links.append(f'<a class="next" rel="next" href="{nxt.href}">{html.escape(nxt.label)} →</a>')
    return " ".join(links)


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s} s" if s < 100 else f"{s // 60} min {s % 60:02d} s"


def _shown_path(folder: Path) -> str:
    """The folder as the pages name it: relative to the repository when inside it, else its name (no
    absolute paths of the machine that built the site)."""
    try:
        return folder.resolve().relative_to(REPO_DIR.resolve()).as_posix()
    except ValueError:
        return folder.resolve().name


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8" />\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
            f"<title>{html.escape(title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n{body}\n"
            f"</body>\n</html>\n")


def _index_page(notebooks: list[Notebook], build_dir: Path, title: str) -> str:
    rows = []
    for nb in notebooks:
        mark = "" if nb.status == "executed" else f' <span class="mark">({nb.status})</span>'
        rows.append(
            f'<tr><td class="num">{nb.number}</td>'
            f'<td><a href="{nb.href}">{html.escape(nb.title)}</a>{mark}</td>'
            f"<td>{html.escape(nb.summary)}</td>"
            f'<td class="num" title="{html.escape(nb.seconds_from)}">{_seconds(nb.seconds)}</td></tr>')
    profiles = sorted({nb.profile for nb in notebooks if nb.profile})
    profile = (f"profile <code>{html.escape(', '.join(profiles))}</code>" if profiles else
               "the profile set in each notebook's <code>parameters</code> cell (not run by papermill)")
    dates = sorted({nb.executed_on for nb in notebooks if nb.executed_on})
    when = f", executed {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "") if dates else ""
    body = f"""<h1>{html.escape(title)}</h1>
<p>The executed notebooks of <code>{html.escape(_shown_path(build_dir))}/</code>: {profile}{when}.</p>
<table>
<thead><tr><th>#</th><th>notebook</th><th>about</th><th>run time</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<p><a href="leaderboard.html">The leaderboard</a>: every model of the course, scored the same way.</p>
<p class="note">Run time: papermill's measurement of this run, or else the lesson run time recorded in the
notebook. Formulas need MathJax from a CDN; offline they show as TeX.</p>"""
    return _page(title, body)


def _leaderboard_page(build_dir: Path, out_dir: Path, title: str) -> str:
    import mistune

    nav = '<p><a href="index.html">↑ ' + html.escape(title) + "</a></p>"
    md, png, csv = (build_dir / f"leaderboard.{ext}" for ext in ("md", "png", "csv"))
    parts = [nav]
    if md.is_file():
        parts.append(mistune.create_markdown(escape=True, plugins=["table"])(md.read_text(encoding="utf-8")))
    else:
        parts.append(f"<h1>Leaderboard</h1>\n<p>There is no leaderboard in <code>"
                     f"{html.escape(_shown_path(build_dir))}/</code> yet. Run <code>make course</code> (or "
                     f"<code>recsys-course run</code>) to execute the notebooks: it writes <code>leaderboard.md"
                     f"</code>, <code>.csv</code> and <code>.png</code> there. Then build this site again.</p>")
    for source, tag in ((png, '<p><img src="leaderboard.png" alt="the leaderboard as bar charts"></p>'),
                        (csv, '<p><a href="leaderboard.csv">leaderboard.csv</a> (every metric)</p>')):
        if source.is_file():
            if source.resolve() != (out_dir / source.name).resolve():
                shutil.copyfile(source, out_dir / source.name)
            parts.append(tag)
    return _page(f"Leaderboard · {title}", "\n".join(parts))


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
