"""Every exercise has a solution in solutions/ that passes its check, and an untouched stub never crashes."""
from __future__ import annotations

import pytest

from recsys_course.course.runner import discover
from recsys_course.exercises import all_exercises, check, exercises_of, load_solutions

NUMBERS = [p.name[:2] for p in discover()]


@pytest.mark.parametrize("number", NUMBERS)
def test_every_notebook_has_at_least_two_exercises(number):
    assert len(exercises_of(number)) >= 2, f"notebook {number} needs at least two exercises"


@pytest.mark.parametrize("number", NUMBERS)
def test_solutions_pass_their_checks(number, capsys):
    solutions = load_solutions(number)
    assert set(solutions) == set(exercises_of(number)), "solutions/ and the registered checks disagree"
    for exercise_id, answer in solutions.items():
        assert check(exercise_id, answer), capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", all_exercises())
def test_stub_and_wrong_answers_give_feedback_not_crashes(exercise_id, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    assert check(exercise_id, stub) is False
    assert "not attempted yet" in capsys.readouterr().out
    assert check(exercise_id, broken) is False
    assert check(exercise_id, None) is False  # not even a function: still feedback, not a crash


def test_unknown_exercise_is_reported():
    assert check("99.nothing", lambda: None) is False
