"""Questionnaires: a few "why" questions per notebook, multiple choice or numeric, checked like the exercises.

A notebook's checks module declares its questionnaire once::

    register_quiz("05", [
        Choice("Why does …?", {"a": "…", "b": "…", "c": "…"}, answer="b",
               why="the reasoning, shown by show_solution",
               hints={"a": "points to the idea that rules a out"}),
        Numeric("How many …?", answer=12288, tol=0, why="…", hint="the formula to use"),
    ])

and the notebook shows it and checks the student's answers::

    show_quiz("05")
    my_answers = {1: None, 2: None}   # a letter for a choice, a number for a numeric question
    check("05.quiz", my_answers)

The feedback lists every question (✅, ❌ with a hint, or ⏳ not answered); the quiz passes when all are right.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import REGISTRY, Exercise
from .answers import NotAttempted, Wrong, fmt, number

__all__ = ["Choice", "Numeric", "Quiz", "register_quiz", "display_quiz"]


@dataclass(frozen=True)
class Choice:
    """A multiple-choice question: ``options`` maps letters to texts; ``hints`` maps wrong letters to a hint."""

    question: str
    options: dict[str, str]
    answer: str
    why: str
    hints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.answer not in self.options:
            raise ValueError(f"answer {self.answer!r} is not one of the options {list(self.options)}")
        if len(self.options) < 3:
            raise ValueError(f"a choice needs at least three options, got {list(self.options)}")
        unknown = set(self.hints) - set(self.options) | ({self.answer} & set(self.hints))
        if unknown:
            raise ValueError(f"hints for {sorted(unknown)}: hints are for the wrong options only")

    def judge(self, given) -> tuple[bool, str]:
        if not isinstance(given, str):
            return False, f"answer with a letter ({', '.join(self.options)}) as a string, got {fmt(given)}"
        letter = given.strip().lower().strip("()")
        if letter not in self.options:
            return False, f"answer with one of the letters {', '.join(self.options)}, got {given!r}"
        if letter == self.answer:
            return True, ""
        return False, self.hints.get(letter, "not this one — reread the section the question is about")

    def markdown(self) -> str:
        return "\n".join(f"   - **({k})** {v}" for k, v in self.options.items())

    def key(self) -> str:
        return f"({self.answer}) {self.options[self.answer]}"


@dataclass(frozen=True)
class Numeric:
    """A numeric question: the answer within ``tol`` (absolute) is right; ``hint`` is shown for a wrong number."""

    question: str
    answer: float
    tol: float
    why: str
    hint: str

    def judge(self, given) -> tuple[bool, str]:
        try:
            value = number(given, "the answer")
        except Wrong as exc:
            return False, str(exc)
        if abs(value - self.answer) <= self.tol + 1e-12:
            return True, ""
        return False, f"{fmt(value)} is not it. {self.hint}"

    def markdown(self) -> str:
        within = "exactly" if self.tol == 0 else f"within ±{fmt(self.tol)}"
        return f"   - *a number ({within})*"

    def key(self) -> str:
        return fmt(self.answer)


@dataclass(frozen=True)
class Quiz:
    """The questionnaire of one notebook."""

    number: str
    questions: tuple

    @property
    def exercise_id(self) -> str:
        return f"{self.number}.quiz"

    def check(self, answers) -> str:
        n = len(self.questions)
        if not isinstance(answers, dict):
            raise Wrong(f"answer with a dict {{question number: answer}} such as {{1: 'b', 2: 0.5}}, got a "
                        f"{type(answers).__name__}")
        answers = {_key(k): v for k, v in answers.items()}
        unknown = sorted(str(k) for k in answers if k not in range(1, n + 1))
        if unknown:
            raise Wrong(f"the questionnaire has questions 1 to {n}; there is no question {', '.join(unknown)}")
        if all(answers.get(i) is None for i in range(1, n + 1)):
            raise NotAttempted("not attempted yet — put your answers in the dict (a letter for a choice, a number "
                               "for a numeric question) and run this cell again.")
        lines, right = [], 0
        for i, q in enumerate(self.questions, start=1):
            given = answers.get(i)
            if given is None:
                lines.append(f"  {i}. ⏳ not answered yet")
                continue
            ok, hint = q.judge(given)
            right += ok
            lines.append(f"  {i}. ✅" if ok else f"  {i}. ❌ {hint}")
        if right < n:
            raise Wrong(f"{right} of {n} right so far:\n" + "\n".join(lines))
        return f"all {n} answers right."

    def markdown(self) -> str:
        parts = [f"**Questionnaire — notebook {self.number}.** Answer in the dict below: a letter for a "
                 "multiple-choice question, a number for a numeric one."]
        for i, q in enumerate(self.questions, start=1):
            parts.append(f"{i}. {q.question}\n{q.markdown()}")
        return "\n\n".join(parts)

    def explain(self, answers=None) -> str:
        out = []
        for i, q in enumerate(self.questions, start=1):
            out.append(f"{i}. {q.question}\n   answer: {q.key()}\n   why: {q.why}")
        return "\n\n".join(out)


def _key(k):
    if isinstance(k, str) and k.strip().isdigit():
        return int(k)
    return k


def register_quiz(notebook_number: str, questions: list) -> Quiz:
    """Register the questionnaire of a notebook as exercise ``NN.quiz``; 3 to 6 questions."""
    if not 3 <= len(questions) <= 6:
        raise ValueError(f"a questionnaire has 3 to 6 questions, got {len(questions)}")
    quiz = Quiz(notebook_number, tuple(questions))
    if quiz.exercise_id in REGISTRY:
        raise ValueError(f"exercise {quiz.exercise_id!r} is registered twice")
    REGISTRY[quiz.exercise_id] = Exercise(quiz.exercise_id, quiz.check, "quiz", None, quiz)
    return quiz


def display_quiz(quiz: Quiz) -> None:
    """Markdown in Jupyter, plain text elsewhere."""
    text = quiz.markdown()
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))
