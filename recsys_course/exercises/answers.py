"""What every check needs: call the student's function safely, read its answer, print numbers plainly.

A check never touches the student's function or its result directly::

    got = number(call(answer, pos, neg), "bpr_pair_loss(...)")

* :func:`call` calls the function **positionally** on copies of the arguments. ``NotImplementedError``
  becomes :class:`NotAttempted` (⏳), any other exception raised *inside the student's code* becomes
  :class:`StudentCrash` (💥, with the line of the student's cell), and ``None`` — a forgotten ``return`` —
  becomes :class:`Wrong` (❌) with that sentence.
* :func:`number`, :func:`integer`, :func:`array`, :func:`text` read the result: a wrong type, a wrong shape or
  a non-finite value is a :class:`Wrong` with a plain sentence, never a crash of the checker.
* :func:`fmt` prints numbers and arrays the way a person writes them (``5``, ``0.8944``, ``[0.8, 0.6]``), never
  ``np.float64(5.0)``.
"""
from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable

import numpy as np

__all__ = ["Wrong", "NotAttempted", "StudentCrash", "call", "number", "integer", "array", "text", "fmt",
           "close", "expect_close", "course_run"]


class Wrong(AssertionError):
    """The answer is wrong; the message is the hint shown after ❌."""


class NotAttempted(Exception):
    """The stub is untouched (⏳)."""


class StudentCrash(Exception):
    """The student's own function raised; the message names the exception and the line of the student's code."""


def _copy(value):
    if hasattr(value, "clone") and callable(value.clone):  # torch tensors and modules' tensors
        return value.clone()
    if hasattr(value, "copy") and callable(value.copy) and not isinstance(value, (str, bytes)):
        try:
            return value.copy()
        except TypeError:
            pass
    if isinstance(value, (list, dict, set)):
        return copy.deepcopy(value)
    return value


def _where(exc: BaseException, fn: Callable) -> str:
    """The line of the student's function where ``exc`` was raised (the deepest frame in its file)."""
    code = getattr(fn, "__code__", None)
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if code is not None and f.filename == code.co_filename]
    if not mine:
        return ""
    frame = mine[-1]
    name = getattr(fn, "__name__", "your function")
    line = f": `{frame.line.strip()}`" if frame.line else ""
    return f" at line {frame.lineno - code.co_firstlineno + 1} of `{name}`{line}"


def call(fn, *args, what: str | None = None, allow_none: bool = False):
    """Call the student's ``fn(*args)`` (positionally, on copies of the arguments) and return its result.

    Raises :class:`Wrong` if ``fn`` is not a function or returns ``None`` (unless ``allow_none``),
    :class:`NotAttempted` for ``NotImplementedError``, :class:`StudentCrash` for any other exception.
    """
    name = what or f"{getattr(fn, '__name__', 'your function')}(...)"
    if not callable(fn):
        raise Wrong(f"pass the function itself (its name, without brackets), not a {type(fn).__name__}: "
                    "check(\"…\", my_function)")
    try:
        with np.errstate(all="ignore"):
            result = fn(*(_copy(a) for a in args))
    except NotImplementedError:
        raise NotAttempted() from None
    except Exception as exc:  # noqa: BLE001 — the student's own code raised
        raise StudentCrash(f"your function raised {type(exc).__name__}: {exc}{_where(exc, fn)}. Fix it and run "
                           "the cell again.") from exc
    if result is None and not allow_none:
        raise Wrong(f"{name} returned None — did you forget the `return`?")
    return result


def _as_numpy(value):
    if hasattr(value, "detach") and callable(value.detach):  # a torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "to_numpy") and callable(value.to_numpy):  # pandas
        value = value.to_numpy()
    return value


def number(value, what: str, *, finite: bool = True) -> float:
    """One real number (a Python or NumPy scalar, a 0-d array, a one-element tensor), as a float."""
    if value is None:
        raise Wrong(f"{what} returned None — did you forget the `return`?")
    if isinstance(value, (bool, np.bool_)):
        raise Wrong(f"{what} should be a number, got the boolean {value}")
    if isinstance(value, (str, bytes)):
        raise Wrong(f"{what} should be a number, got the text {value!r} — return the number itself, not a string")
    value = _as_numpy(value)
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise Wrong(f"{what} should be a single number, got an array of shape {value.shape} — "
                        "reduce it to one number")
        value = value.reshape(()).item()
    if isinstance(value, (list, tuple, dict, set)):
        raise Wrong(f"{what} should be a single number, got a {type(value).__name__}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be a number, got a {type(value).__name__}") from None
    if isinstance(value, complex) or (finite and not math.isfinite(out)):
        raise Wrong(f"{what} should be a finite number, got {fmt(out)}")
    return out


def integer(value, what: str) -> int:
    """A whole number (an int, or a float with no fractional part such as ``1024.0``)."""
    out = number(value, what)
    if not out.is_integer():
        raise Wrong(f"{what} should be a whole number (a count), got {fmt(out)}")
    return int(out)


def array(value, what: str, *, shape: tuple | None = None, ndim: int | None = None, finite: bool = True
          ) -> np.ndarray:
    """A numeric array (NumPy, list, tensor, Series) of the given shape (``None`` in ``shape`` = any size)."""
    if value is None:
        raise Wrong(f"{what} returned None — did you forget the `return`?")
    if isinstance(value, (str, bytes, dict, set)):
        raise Wrong(f"{what} should be an array of numbers, got a {type(value).__name__}")
    value = _as_numpy(value)
    try:
        out = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be an array of numbers, got a {type(value).__name__} that is not one") from None
    if ndim is not None and out.ndim != ndim:
        raise Wrong(f"{what} should have {ndim} dimension{'s' if ndim != 1 else ''}"
                    f"{f' (shape {_shape(shape)})' if shape else ''}, got shape {tuple(out.shape)}")
    if shape is not None and (out.ndim != len(shape)
                              or any(s is not None and s != o for s, o in zip(shape, out.shape))):
        raise Wrong(f"{what} should have shape {_shape(shape)}, got shape {tuple(out.shape)}")
    if finite and not np.isfinite(out).all():
        raise Wrong(f"{what} contains {'nan' if np.isnan(out).any() else 'inf'} — a division by zero or an "
                    "overflow; which edge case does the exercise mention?")
    return out


def _shape(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def text(value, what: str) -> str:
    """A string."""
    if value is None:
        raise Wrong(f"{what} returned None — did you forget the `return`?")
    if not isinstance(value, str):
        raise Wrong(f"{what} should return one string, got a {type(value).__name__}")
    return value


def fmt(value, digits: int = 4) -> str:
    """A number or an array as a person writes it: ``5``, ``0.8944``, ``[0.8, 0.6]``, ``nan``."""
    value = _as_numpy(value)
    if isinstance(value, (np.ndarray, list, tuple)):
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 0:
            return fmt(arr.item(), digits)
        return "[" + ", ".join(fmt(v, digits) for v in arr) + "]"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if not math.isfinite(v):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e6 else str(round(v, digits))


def _key(key) -> str:
    return repr(key) if isinstance(key, str) else fmt(key)


def entries(got, keys, shape: str) -> dict:
    """An experiment's answer read as a mapping: ``{key: got[key]}`` for every key of ``keys``. ``got`` may be a
    dict or a pandas Series (what ``evaluate`` returns); anything else, or a missing key, is :class:`Wrong` with the
    expected ``shape`` spelled out (``"{λ: test RMSE}"``)."""
    keys = list(keys)
    wanted = "[" + ", ".join(_key(k) for k in keys) + "]"
    if got is None:
        raise Wrong(f"got None: did you forget the `return`? Return a dict {shape} with the keys {wanted}.")
    if not (isinstance(got, dict) or type(got).__name__ == "Series"):
        raise Wrong(f"return a dict {shape} with the keys {wanted}, got a {type(got).__name__}.")
    missing = [k for k in keys if k not in got]
    if missing:
        has = ", ".join(_key(k) for k in list(got.keys())[:6])
        raise Wrong(f"the dict should have the keys {wanted}; it lacks {', '.join(_key(k) for k in missing)} "
                    f"(it has {has or 'no key at all'}).")
    return {k: got[k] for k in keys}


def keyed_numbers(got, keys, shape: str, label: Callable[[object], str]) -> dict:
    """:func:`entries`, each value read by :func:`number` (``label(key)`` names it in a message)."""
    return {k: number(v, label(k)) for k, v in entries(got, keys, shape).items()}


def numbers_on(answer, cases, what: str) -> list[float]:
    """The student's function on every case (each case is ``(label, *args)``), read as numbers (nan allowed)."""
    return [number(call(answer, *args), what, finite=False) for _, *args in cases]


def recognised(got: list[float], cases, variants) -> str | None:
    """The hint of the first known mistake ``(hint, variant)`` whose numbers equal the student's on every case."""
    for hint, variant in variants:
        want = [variant(*args) for _, *args in cases]
        if all(np.isfinite(g) and close(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, want)):
            return hint
    return None


def close(got, want, *, rtol: float = 1e-9, atol: float = 1e-9) -> bool:
    """``got`` and ``want`` (numbers or arrays of one shape) agree within the tolerances."""
    return bool(np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rtol, atol=atol))


def expect_close(got, want, hint: str, *, rtol: float = 1e-9, atol: float = 1e-9, case: str = "") -> None:
    """Raise :class:`Wrong` ("on <case>: expected …, got … <hint>") unless ``got`` is close to ``want``."""
    if not close(got, want, rtol=rtol, atol=atol):
        where = f"on {case}: " if case else ""
        raise Wrong(f"{where}expected {fmt(want)}, got {fmt(got)}. {hint}".strip())


_COURSE_RUNS: dict[tuple, tuple] = {}
_COURSE_RUNS_KEPT = 8


def smoke_ratings(n_users: int = 100):
    """ml-latest-small cut to the smoke profile's seeded sample of ``n_users`` users, as the notebooks cut it: the
    data an experiment's ``inputs`` can build when the lesson-size model would cost the tests minutes (a check
    compares with a rerun on whatever it is given)."""
    from ..config import USER
    from ..data import load_movielens

    ratings = load_movielens().ratings
    keep = np.random.default_rng(42).choice(np.sort(ratings[USER].unique()), size=n_users, replace=False)
    return ratings[ratings[USER].isin(keep)].reset_index(drop=True)


def course_run(fn: Callable, *inputs):
    """``fn(*inputs)`` — the course's own run of an experiment — computed once per set of input objects.

    A student checks an experiment several times on the same notebook objects; the reference is the same each
    time. The cache keys on the inputs' identities and keeps the inputs alive while cached, so an id cannot be
    reused by another object; the oldest of ``_COURSE_RUNS_KEPT`` entries is dropped first.
    """
    key = (fn, *map(id, inputs))
    if key not in _COURSE_RUNS:
        if len(_COURSE_RUNS) >= _COURSE_RUNS_KEPT:
            _COURSE_RUNS.pop(next(iter(_COURSE_RUNS)))
        _COURSE_RUNS[key] = (inputs, fn(*inputs))
    return _COURSE_RUNS[key][1]
