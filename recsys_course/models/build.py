"""Building any model of the course from its class and a data set: what tools that go over every model need
(the conformance tests, ``recsys-course gpu-check``).

The models never load a data set by themselves: a model that reads film features, film texts or the film table
takes it as a constructor argument (required, or ``None`` that fails in ``fit`` naming the fix).
:data:`REQUIRED_DATA` says how to build each such argument, by parameter name, from a MovieLens-like object
(``ratings``, ``movies``, ``tags``); :func:`required_data` applies it to one class.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable


def _features(ml):
    from ..features import item_features

    return item_features(ml.movies, ml.tags)


def _item_text(ml):
    from ..text import item_texts

    return item_texts(ml.movies, ml.tags)


def _content(ml):
    from .content import ContentBased

    return ContentBased(_features(ml))


#: constructor parameter -> how to build it from ``ml`` (``movies``, ``tags``)
REQUIRED_DATA: dict[str, Callable] = {"features": _features, "item_text": _item_text,
                                      "movies": lambda ml: ml.movies, "content": _content}


def init_params(cls) -> dict[str, inspect.Parameter]:
    """The named constructor parameters of ``cls``."""
    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def required_data(cls, ml) -> dict:
    """The data arguments ``cls`` needs (those in :data:`REQUIRED_DATA` without a usable default), built from
    ``ml``. A required parameter that the table does not know raises ``TypeError`` naming it."""
    out = {}
    for name, p in init_params(cls).items():
        if name in REQUIRED_DATA and p.default in (inspect.Parameter.empty, None):
            out[name] = REQUIRED_DATA[name](ml)
        elif p.default is inspect.Parameter.empty:
            raise TypeError(f"{cls.__name__} requires '{name}': add how to build it to REQUIRED_DATA in {__name__}")
    return out
