r"""Real time (notebook 12): learning from the stream of ratings as it arrives.

* :mod:`~recsys_course.stream.online` — :class:`OnlineFoldIn`, a fitted factor model whose users are re-solved
  (fold-in, item side fixed) at every event: ``update`` / ``update_many`` then ``recommend``; the state behind the
  course's recommendation service (:mod:`recsys_course.serve`).

Importing this package imports neither torch nor the web stack.
"""
from .online import OnlineFoldIn, UnknownFilmError

__all__ = ["OnlineFoldIn", "UnknownFilmError"]
