"""What each model costs on ml-latest-small: fit time, recommend time per user, peak memory — next to Surprise's
KNN and SVD and implicit's ALS where installed. The same as ``recsys-course bench``; see
:mod:`recsys_course.course.bench` for what is measured and how.

    .venv/bin/python benchmarks/models.py                                   # every model, printed
    .venv/bin/python benchmarks/models.py --models ItemKNN UserKNN EASE     # a few
    .venv/bin/python benchmarks/models.py --write benchmarks/costs.json     # what the leaderboard joins
"""
from __future__ import annotations

from recsys_course.course.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
