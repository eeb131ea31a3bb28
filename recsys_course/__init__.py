"""recsys_course — the small, tested helper package behind the course notebooks."""
import os

# Same bits on every x86 CPU with AVX2, and whatever the batch: Intel MKL (torch's CPU BLAS) otherwise picks its
# code path by processor — on an AVX-512 machine a text encoded alone and the same text encoded in a batch differ
# in the last bits, so cached sentence vectors would depend on which notebook filled the cache first. MKL reads
# this at its first call, so it holds as long as the course is imported before the first heavy torch operation
# (every notebook's imports cell); a value the user sets is kept. Costs a few per cent of speed on AVX-512 CPUs.
os.environ.setdefault("MKL_CBWR", "AVX2")

from .config import ITEM, RATING, TIME, USER

try:
    from .data import MovieLens, check_ratings, load_movielens, toy_purchases, toy_ratings
    from .evaluate import evaluate
    from .record import record, record_evaluation
except ModuleNotFoundError as _missing:  # a bare Python: only `python -m recsys_course setup` can run
    if (_missing.name or "").startswith("recsys_course"):
        raise
    _NOT_INSTALLED = (f"recsys_course needs its dependencies ({_missing.name} is missing): set the course up with "
                      "`python -m recsys_course setup` (or `pip install -e .`) and use that environment's Python")

    def __getattr__(name):
        raise ModuleNotFoundError(_NOT_INSTALLED)

__version__ = "0.1.0"
__all__ = ["USER", "ITEM", "RATING", "TIME", "MovieLens", "load_movielens", "check_ratings", "toy_purchases",
           "toy_ratings", "evaluate", "record", "record_evaluation", "__version__"]
