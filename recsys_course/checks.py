"""The argument checks every model uses: one function per kind of mistake, one wording per kind.

Each check names the model and the parameter, says what is allowed and shows what it got::

    BiasedMF: n_factors must be an integer >= 1, got 0
    AutoRec: lr must be a finite number > 0, got nan
    DAE: corruption must be a finite number >= 0 and < 1, got 1.0
    MultVAE: val_size must be an integer >= 1, a share strictly between 0 and 1, or None, got 1.5
    SASRec: loss must be one of ['sampled_softmax', 'softmax', 'bce'], got 'mse'

``owner`` is the model (its class name prefixes the message) or a string (used as is). Every check returns
the value, so ``k = check_int(self, "k", k)`` reads naturally. All raise :class:`ValueError`.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["is_int", "is_number", "check_int", "check_number", "check_share", "check_choice", "check_bool",
           "check_size", "check_training", "require_known_users"]


def is_int(value) -> bool:
    """An integer, not a bool (``True`` is an ``int`` in Python, never a sensible count)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def is_number(value) -> bool:
    """A finite real number, not a bool."""
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value))


def _prefix(owner) -> str:
    if owner is None:
        return ""
    return f"{owner}: " if isinstance(owner, str) else f"{type(owner).__name__}: "


def _fail(owner, name: str, allowed: str, value, allow_none: bool):
    raise ValueError(f"{_prefix(owner)}{name} must be {allowed}{' or None' if allow_none else ''}, got {value!r}")


def check_int(owner, name: str, value, *, low: int = 1, allow_none: bool = False):
    """``value`` is an integer ``>= low`` (or None when ``allow_none``)."""
    if value is None and allow_none:
        return value
    if not is_int(value) or value < low:
        _fail(owner, name, f"an integer >= {low}", value, allow_none)
    return value


def check_number(owner, name: str, value, *, positive: bool = False, below: float | None = None,
                 allow_none: bool = False):
    """``value`` is a finite number ``>= 0`` (``> 0`` when ``positive``), and ``< below`` when given."""
    if value is None and allow_none:
        return value
    ok = is_number(value) and (value > 0 if positive else value >= 0) and (below is None or value < below)
    if not ok:
        _fail(owner, name, f"a finite number {'> 0' if positive else '>= 0'}"
                           f"{f' and < {below:g}' if below is not None else ''}", value, allow_none)
    return value


def check_share(owner, name: str, value, *, allow_none: bool = False):
    """``value`` is a share strictly between 0 and 1."""
    if value is None and allow_none:
        return value
    if not is_number(value) or not 0 < value < 1:
        _fail(owner, name, "a share strictly between 0 and 1", value, allow_none)
    return value


def check_choice(owner, name: str, value, choices):
    """``value`` is one of ``choices``."""
    if isinstance(value, (list, dict, set)) or value not in tuple(choices):
        raise ValueError(f"{_prefix(owner)}{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_bool(owner, name: str, value):
    """``value`` is ``True`` or ``False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{_prefix(owner)}{name} must be True or False, got {value!r}")
    return value


def check_size(owner, name: str, value, *, allow_none: bool = True):
    """A slice size: an integer count ``>= 1`` or a share strictly between 0 and 1 (``val_size``)."""
    if value is None and allow_none:
        return value
    if not (is_int(value) and value >= 1) and not (is_number(value) and not is_int(value) and 0 < value < 1):
        allowed = "an integer >= 1, a share strictly between 0 and 1 or None" if allow_none else \
            "an integer >= 1 or a share strictly between 0 and 1"
        raise ValueError(f"{_prefix(owner)}{name} must be {allowed}, got {value!r}")
    return value


def check_sizes(owner, name: str, value, *, allow_empty: bool = False):
    """``value`` is a tuple or list of integers >= 1 (layer widths such as ``hidden``); returns it as a tuple."""
    ok = isinstance(value, (tuple, list)) and (allow_empty or len(value) > 0) and all(is_int(v) and v >= 1
                                                                                      for v in value)
    if not ok:
        raise ValueError(f"{_prefix(owner)}{name} must be a {'' if allow_empty else 'non-empty '}tuple of integers "
                         f">= 1 (layer widths), got {value!r}")
    return tuple(int(v) for v in value)


def check_training(model) -> None:
    """The parameters every torch model of the course shares (see the glossary in CONTRIBUTING.md)."""
    from .split import VALIDATION_SPLITS

    check_number(model, "lr", model.lr, positive=True)
    check_number(model, "weight_decay", model.weight_decay)
    check_int(model, "n_epochs", model.n_epochs)
    check_int(model, "batch_size", model.batch_size)
    check_int(model, "patience", model.patience, allow_none=True)
    check_size(model, "val_size", model.val_size)
    check_choice(model, "val_split", model.val_split, VALIDATION_SPLITS)
    check_bool(model, "refit", model.refit)
    check_int(model, "seed", model.seed, low=0)
    check_bool(model, "verbose", model.verbose)


def require_known_users(model, users, *, lacks: str = "factors",
                        advice: str = "use a model that handles new users (Popularity, BiasBaseline)") -> None:
    """Refuse user positions ``-1`` (users absent from training) where the model has nothing to score them with.

    Raises :class:`~recsys_course.models.base.UnknownIdError` (not ValueError: the input is well formed, the
    model just does not know the user), e.g. ``EASE has no factors for users absent from its training data,
    so it cannot score them; use a model that handles new users (Popularity, BiasBaseline)``. ``lacks`` says
    what the model is missing for them, ``advice`` what to do instead.
    """
    if (np.asarray(users) < 0).any():
        from .models.base import UnknownIdError  # models.base imports this module

        raise UnknownIdError(f"{type(model).__name__} has no {lacks} for users absent from its training data, so "
                             f"it cannot score them; {advice}")
