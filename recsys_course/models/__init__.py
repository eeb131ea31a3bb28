"""Every model of the course, behind one protocol (see :mod:`recsys_course.models.base`)."""
from .base import NotFittedError, Recommender, UnknownIdError, top_k
from .baselines import BiasBaseline, GlobalMean, Popularity

__all__ = ["Recommender", "NotFittedError", "UnknownIdError", "top_k", "GlobalMean", "BiasBaseline", "Popularity"]
