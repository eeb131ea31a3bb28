"""recsys_course — the small, tested helper package behind the course notebooks."""
from .config import ITEM, RATING, TIME, USER
from .data import MovieLens, check_ratings, load_movielens, toy_purchases, toy_ratings
from .evaluate import evaluate
from .record import record, record_evaluation

__version__ = "0.1.0"
__all__ = ["USER", "ITEM", "RATING", "TIME", "MovieLens", "load_movielens", "check_ratings", "toy_purchases",
           "toy_ratings", "evaluate", "record", "record_evaluation", "__version__"]
