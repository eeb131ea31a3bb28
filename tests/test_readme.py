"""The README states what the committed notebooks show: every notebook linked, the leaderboard up to date."""
from __future__ import annotations

from pathlib import Path

from recsys_course.course import costs, leaderboard, links, runner

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_links_every_notebook_with_a_colab_badge():
    badge = links.location().badge_prefix()
    for nb in runner.discover(ROOT / "notebooks"):
        assert f"(notebooks/{nb.name})" in README, f"README does not link {nb.name}"
        assert f"{badge}{nb.name}" in README


def test_readme_leaderboard_matches_the_committed_notebooks():
    """The tables come from the committed notebooks' records, with the costs of benchmarks/costs.json."""
    board = costs.join(leaderboard.collect(runner.discover(ROOT / "notebooks")))
    table = leaderboard.to_markdown(board).strip()
    assert table in README, ("the README's leaderboard is stale; paste the output of\n"
                             "python -c \"from recsys_course.course import costs, leaderboard, runner; "
                             "print(leaderboard.to_markdown(costs.join(leaderboard.collect(runner.discover()))))\"\n"
                             + table)


def test_readme_names_the_two_commands_and_the_data_terms():
    assert "make course" in README and "make test" in README
    assert "Harper" in README and "Konstan" in README
    assert "commercial" in README and "data/ml-latest-small/README.txt" in README
