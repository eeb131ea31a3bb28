"""Prose that cannot drift: the numbers a notebook's text quotes are the numbers its run shows.

Every number with three or more decimals in a MARKDOWN cell of ``notebooks/NN_*.ipynb`` (e.g. 0.8812, 1.0675,
-0.034) must appear in that notebook's code-cell outputs (stream, ``text/plain``, ``text/html`` and the other
``text/*`` outputs) or in its recorded metrics (:func:`recsys_course.record.read_records`). An output or a
record supports the prose if it shows the same value, or a longer one that rounds to it (output 0.88123 supports
prose 0.8812). A number written without a sign also matches a negative output (prose says "a drop of 0.034").

Not prose numbers, and so not checked: LaTeX (``$...$``, ``$$...$$``: the worked examples by hand, whose
arithmetic is on the page), inline code and code blocks (parameter values such as ``lr=0.005``), link targets,
URLs and DOIs, version strings (2.13.0), dates, numbers with fewer than three decimals (0.82, 12.3 %) and
thousands separators (1,249 is an integer), and an exercise's tolerance ("within ±0.002", "tolerance ±0.01").

What the outputs cannot show goes into ``ALLOWED`` with its reason, and even then it is checked where possible:
a number quoted from another notebook names that notebook (``source``) and must appear in ITS outputs or
records; a number derived from others (a difference, a bound, a formula) gives the arithmetic (``equals``),
whose decimal operands must themselves be shown by the notebook. Only a number that nothing can check (a
paper's figure, a reading of a plot) is allowed on its reason alone.

Fast: it reads the committed .ipynb files and executes nothing.
"""
from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import pytest

from recsys_course.record import read_records

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
FIX = ("Fix: update the prose to the number the output shows, or add an allow-list entry with the reason "
       "(ALLOWED in tests/test_prose_numbers.py).")


@dataclass(frozen=True)
class Allowed:
    """A prose number that the notebook's own outputs do not show, and why it is right anyway."""

    notebook: str            # "05": the notebook whose markdown quotes the number
    number: str              # as written in the prose, e.g. "0.005"
    context: str | None      # words of the same markdown cell (whitespace is ignored); None = any cell
    why: str                 # the reason, for the reader of this file
    source: str | None = None  # another notebook ("04") whose outputs or records must show the number
    equals: str | None = None  # arithmetic that must round to the number, or a comparison that must hold


ALLOWED = [
    # 03 · worked example by hand: a title word found in one of the three toy titles has scikit-learn's idf
    # ln(4/2) + 1; the cell's LaTeX shows the same value for "classic", and cell 9 asserts the resulting rows.
    Allowed("03", "1.6931", '"actually" in one', "idf of a word in one title of three: ln(4/2) + 1",
            equals="log(4 / 2) + 1"),
    # 05 · AutoRec's margin over the bias baseline on the validation slice: the difference of two shown numbers.
    Allowed("05", "0.005", "beats the bias baseline on this slice by only", "0.8791 - 0.8740, both shown",
            equals="0.8791 - 0.8740"),
    # 05 · the four DAE settings span 0.0653 ... 0.0697 (all four shown in the same cell's prose and outputs).
    Allowed("05", "0.005", "all four settings lie within 0.005 of each other", "a bound on a shown spread",
            equals="0.0697 - 0.0653 <= 0.005"),
    # 05 · the DAE settings' margins over Popularity (0.0584): the smallest and the largest.
    Allowed("05", "0.007", "only 0.007–0.011 above Popularity", "0.0653 - 0.0584, both shown",
            equals="0.0653 - 0.0584"),
    Allowed("05", "0.011", "only 0.007–0.011 above Popularity", "0.0697 - 0.0584, both shown",
            equals="0.0697 - 0.0584"),
    # 05 · a reading of the plot of section 5.1 (validation NDCG per epoch; not printed). Near its peak (epochs
    # 12-20 of the lesson run) the chosen beta_max = 0.2 curve moves by -0.0045 ... +0.0062 from epoch to epoch.
    Allowed("05", "0.005", "the winning curve moves by", "read off the validation curves plotted in section 5.1"),
    # 06 · BPR's test NDCG@10 on the same ranking split: notebook 04's leaderboard row.
    Allowed("06", "0.0768", "BPR 0.0768 (notebook 04", "from notebook 04's output", source="04"),
    # 08 · SASRec's best validation NDCG@10 in notebook 06's lesson run (the default: one block, lr 0.005; its
    # section 5 prints it as "live 0.0432", next to the stored grid's 0.0416 from another CPU).
    Allowed("08", "0.0432", "against SASRec's 0.0432 in notebook 06", "from notebook 06's output and records",
            source="06"),
    # 09 · ALS's and BiasedMF's test RMSE on the same rating split: notebook 04's leaderboard.
    Allowed("09", "0.8854", "level with ALS (0.8854)", "from notebook 04's output", source="04"),
    Allowed("09", "0.8812", "close to BiasedMF (0.8812)", "from notebook 04's output", source="04"),
]


# --- what counts as a prose number -------------------------------------------------------------------------
# three or more decimals; an optional sign (ASCII or Unicode minus); thousands separators in the integer part.
# Not part of a longer token: no letter, digit or dot before it (2.13.0, v1.2.345, x0.123), no "digit," before
# it (a list such as 0.1,0.2345 is not "1,0.2345"), and no letter or ".digit" after it (a sentence may end in
# "0.8812."; 1.2.345 and 0.123abc are not numbers).
NUMBER = re.compile(r"(?<![\w.])(?<!\d,)(?P<sign>[-−]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)\.(?P<dec>\d{3,})(?!\w|\.\d)")
NOT_PROSE = re.compile(
    r"```.*?```"                                   # fenced code
    r"|`[^`\n]*`"                                  # inline code
    r"|\$\$.*?\$\$"                                # display math
    r"|(?<![\\$])\$(?!\$).*?(?<![\\$])\$"          # inline math (\$ is a literal dollar)
    r"|\\begin\{(?P<env>\w+\*?)\}.*?\\end\{(?P=env)\}"  # a LaTeX environment outside dollars
    r"|\]\([^)]*\)"                                # a markdown link's target
    r"|<https?://[^>]*>|https?://\S+|\bdoi:\S+"   # URLs, DOIs
    r"|\b(?:within|tolerance) ±\s?[\d.,]+",        # an exercise's stated tolerance: a setting, not a result
    re.S)
# a number in an output: the same integer part, any number of decimals, an optional exponent
OUTPUT_NUMBER = re.compile(r"(?<![\w.])(?P<sign>-?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<dec>\d+))?"
                           r"(?P<exp>[eE][-+]?\d+)?")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def prose_numbers(markdown: str):
    """(number as written without sign, sign, decimals, position) of every checked number in a markdown text."""
    cleaned = NOT_PROSE.sub(lambda m: " " * len(m.group(0)), markdown)  # keep positions for the messages
    for m in NUMBER.finditer(cleaned):
        written = f"{m['int'].replace(',', '')}.{m['dec']}"
        yield written, ("-" if m["sign"] else ""), len(m["dec"]), m.start()


def output_values(text: str) -> set[tuple[Decimal, bool]]:
    """Every number shown in an output text as (absolute value, is negative)."""
    values = set()
    for m in OUTPUT_NUMBER.finditer(text):
        literal = m["int"].replace(",", "") + (f".{m['dec']}" if m["dec"] else "") + (m["exp"] or "")
        try:
            values.add((abs(Decimal(literal)), bool(m["sign"])))
        except InvalidOperation:  # pragma: no cover - the pattern only admits valid literals
            continue
    return values


def _rounded(value: Decimal, decimals: int) -> set[Decimal]:
    step = Decimal(1).scaleb(-decimals)
    return {value.quantize(step, rounding=ROUND_HALF_UP), value.quantize(step, rounding=ROUND_HALF_EVEN)}


@dataclass
class Shown:
    """What a notebook's run shows: numbers of its outputs and its records, rounded on demand."""

    values: set[tuple[Decimal, bool]]
    by_decimals: dict

    def supports(self, written: str, sign: str) -> bool:
        decimals = len(written.split(".")[1])
        if decimals not in self.by_decimals:
            table = set()
            for value, negative in self.values:
                for r in _rounded(value, decimals):
                    table.add((r, negative))
            self.by_decimals[decimals] = table
        target = Decimal(written)
        table = self.by_decimals[decimals]
        return (target, True) in table if sign else ((target, False) in table or (target, True) in table)


@cache
def load(number: str) -> tuple[Path, dict]:
    (path,) = NOTEBOOK_DIR.glob(f"{number}_*.ipynb")
    return path, json.loads(path.read_text(encoding="utf-8"))


@cache
def shown(number: str) -> Shown:
    path, nb = load(number)
    values: set[tuple[Decimal, bool]] = set()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                values |= output_values(_text(out["text"]))
            for mime, data in out.get("data", {}).items():
                if mime.startswith("text/"):
                    values |= output_values(_text(data))
    for value in read_records(path).values():
        d = Decimal(repr(float(value)))
        values.add((abs(d), d < 0))
    return Shown(values, {})


def _squash(text: str) -> str:
    return " ".join(text.split())


def markdown_cells(number: str):
    _, nb = load(number)
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            yield index, cell.get("id", "?"), _text(cell["source"])


def _entries_for(number: str, written: str, source: str) -> list[Allowed]:
    return [a for a in ALLOWED if a.notebook == number and a.number == written
            and (a.context is None or _squash(a.context) in _squash(source))]


# --- checking an allow-list entry ----------------------------------------------------------------------------
_FUNCTIONS = {"log": math.log, "sqrt": math.sqrt, "exp": math.exp, "abs": abs, "min": min, "max": max}


def _evaluate(node, expr: str, operands: list[str]):
    """Arithmetic only: numbers, + - * / **, comparisons, and the functions in _FUNCTIONS."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, expr, operands)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        operands.append(ast.get_source_segment(expr, node))
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, expr, operands)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
        a, b = _evaluate(node.left, expr, operands), _evaluate(node.right, expr, operands)
        return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b,
                ast.Div: a / b if b else math.nan, ast.Pow: a ** b}[type(node.op)]
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        a, b = _evaluate(node.left, expr, operands), _evaluate(node.comparators[0], expr, operands)
        ops = {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b, ast.Eq: a == b}
        if type(node.ops[0]) in ops:
            return ops[type(node.ops[0])]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS \
            and not node.keywords:
        return _FUNCTIONS[node.func.id](*[_evaluate(a, expr, operands) for a in node.args])
    raise ValueError(f"`equals` allows numbers, + - * / **, one comparison and {sorted(_FUNCTIONS)}: {expr!r}")


def problems_of_entry(entry: Allowed) -> list[str]:
    """Why an allow-list entry does not hold ([] if it does)."""
    label = f"ALLOWED entry ({entry.notebook}, {entry.number}, {entry.context!r})"
    out = []
    if not entry.why.strip():
        out.append(f"{label}: give the reason (why)")
    if entry.source is not None:
        if not list(NOTEBOOK_DIR.glob(f"{entry.source}_*.ipynb")):
            return out + [f"{label}: source notebook {entry.source} does not exist"]
        if not shown(entry.source).supports(entry.number, ""):
            out.append(f"{label}: notebook {entry.source} shows no {entry.number} in its outputs or records; "
                       f"update the prose of notebook {entry.notebook} to what notebook {entry.source} shows "
                       "(and this entry)")
    if entry.equals is not None:
        operands: list[str] = []
        value = _evaluate(ast.parse(entry.equals, mode="eval"), entry.equals, operands)
        decimals = len(entry.number.split(".")[1])
        if isinstance(value, bool):
            if not value:
                out.append(f"{label}: {entry.equals} does not hold any more; update the prose and this entry")
        elif abs(abs(value) - float(entry.number)) > 0.5 * 10 ** -decimals + 1e-12:
            out.append(f"{label}: {entry.equals} = {value:.{decimals + 2}f}, which does not round to "
                       f"{entry.number}; update the prose and this entry")
        for operand in operands:
            if "." in operand and operand != entry.number and not shown(entry.notebook).supports(operand, ""):
                out.append(f"{label}: operand {operand} of {entry.equals!r} is in no output or record of "
                           f"notebook {entry.notebook}; update the prose and this entry")
    return out


# --- the tests -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
def test_every_prose_number_is_shown_by_the_notebook(path):
    number = path.name[:2]
    run = shown(number)
    failures = []
    for index, cell_id, source in markdown_cells(number):
        for written, sign, _, pos in prose_numbers(source):
            if run.supports(written, sign):
                continue
            entries = _entries_for(number, written, source)
            if entries:
                continue  # checked by test_allow_list_entries_hold
            excerpt = _squash(source[max(0, pos - 60):pos + len(written) + 40])
            failures.append(f"notebooks/{path.name}, cell {index} (id {cell_id}): {sign}{written} — "
                            f"“…{excerpt}…” appears in no output and no record of this notebook.")
    assert not failures, f"{len(failures)} prose number(s) not shown by the run:\n" + "\n".join(failures) + "\n" + FIX


@pytest.mark.parametrize("entry", ALLOWED, ids=[f"{a.notebook}-{a.number}" for a in ALLOWED])
def test_allow_list_entries_hold(entry):
    assert list(NOTEBOOK_DIR.glob(f"{entry.notebook}_*.ipynb")), f"no notebook {entry.notebook}"
    used = [(index, written) for index, _, source in markdown_cells(entry.notebook)
            for written, *_ in prose_numbers(source)
            if written == entry.number and entry in _entries_for(entry.notebook, written, source)]
    assert used, (f"ALLOWED entry ({entry.notebook}, {entry.number}, {entry.context!r}) matches no prose number "
                  "any more: remove it")
    problems = problems_of_entry(entry)
    assert not problems, "\n".join(problems)


def test_what_counts_as_a_prose_number():
    text = ("RMSE 0.8812 and −0.034, drop of 0.0341. Sentence end 1.0675. torch 2.13.0, v1.2.345, "
            "1,249 ratings, 1,249.125 s, 2018-09-26, 12.3 %, 0.82, $\\sqrt{0.5625} = 0.75$, "
            "$$x = 0.1234$$, `lr=0.005`, [doi:10.1145/2827872](https://doi.org/10.1145/2827872), 0.025–0.035, "
            "0.1,0.2345 and ±0.005, accepted within ±0.002 (tolerance ±0.0015)")
    found = [(sign + written) for written, sign, _, _ in prose_numbers(text)]
    assert found == ["0.8812", "-0.034", "0.0341", "1.0675", "1249.125", "0.025", "0.035", "0.005"]


def test_how_an_output_supports_a_number():
    run = Shown(output_values("rmse 0.88123  delta -0.0341  big 1,249.5000  tiny 8.812e-01 | 0.5"), {})
    assert run.supports("0.8812", "") and run.supports("0.881", "")   # same value, or rounded to the prose
    assert not run.supports("0.8813", "")
    assert run.supports("0.034", "") and run.supports("0.034", "-")   # "a drop of 0.034" and "-0.034"
    assert run.supports("0.0341", "-") and not run.supports("0.88123", "-")  # a minus in the prose needs one
    assert run.supports("1249.500", "") and run.supports("0.500", "")
    assert Shown(output_values("8.812e-01"), {}).supports("0.8812", "")
