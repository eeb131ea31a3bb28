r"""Real time (notebook 12): learning from the stream of ratings as it arrives.

* :mod:`~recsys_course.stream.replay` — :func:`warmup_split` (history before a point in time, the stream after),
  :func:`prequential` (test-then-train evaluation of a strategy on the stream), :func:`sessions`, :func:`rolling`
  (moving-window HR@k / NDCG@k for the plot), :func:`stream_table` (one row per strategy).
* :mod:`~recsys_course.stream.updaters` — the strategies :func:`prequential` compares: :class:`Static`,
  :class:`Periodic` (retrain every week / month of stream time), :class:`OnlineFoldInStrategy` (per-event fold-in),
  :class:`OnlineItemKNN` (co-occurrence counts updated per event), :class:`SequenceStrategy` (a next-item model
  continuing each user's grown sequence).
* :mod:`~recsys_course.stream.feedback` — :func:`feedback_loop`: recommend → users respond by their true utility →
  retrain, in the synthetic world; coverage, Gini of exposure and true utility per round.
* :mod:`~recsys_course.stream.online` — :class:`OnlineFoldIn`, a fitted factor model whose users are re-solved
  (fold-in, item side fixed) at every event: ``update`` / ``update_many`` then ``recommend``; the state behind the
  course's recommendation service (:mod:`recsys_course.serve`).

Importing this package imports neither torch nor the web stack.
"""
from .feedback import RESPONSES, feedback_loop
from .online import OnlineFoldIn, UnknownFilmError
from .replay import USERS, prequential, rolling, sessions, stream_table, warmup_split
from .updaters import OnlineFoldInStrategy, OnlineItemKNN, Periodic, SequenceStrategy, Static, Strategy, as_seconds

__all__ = ["OnlineFoldIn", "UnknownFilmError", "warmup_split", "sessions", "prequential", "rolling", "stream_table",
           "USERS", "Strategy", "Static", "Periodic", "OnlineFoldInStrategy", "OnlineItemKNN", "SequenceStrategy",
           "as_seconds", "feedback_loop", "RESPONSES"]
