r"""The course's recommendation service (notebook 12): ``recsys-course serve``.

* :mod:`~recsys_course.serve.app` — :func:`create_app` (FastAPI: ``/recommend``, ``/search``, ``/events``,
  ``/health``) and :func:`run` (uvicorn, until Ctrl-C);
* :mod:`~recsys_course.serve.events` — :class:`EventLog`, the durable SQLite log of rating events
  (:func:`default_event_log`, :class:`EventLogError`).

Nothing else in the package imports this one, and the web stack (FastAPI, uvicorn) loads only when the app is
built: ``import recsys_course`` and the event log stay light.
"""
from __future__ import annotations

from .events import Event, EventLog, EventLogError, default_event_log

__all__ = ["create_app", "run", "Event", "EventLog", "EventLogError", "default_event_log"]


def __getattr__(name: str):
    if name in ("create_app", "run"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'recsys_course.serve' has no attribute {name!r}")
