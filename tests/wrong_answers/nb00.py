"""Plausible wrong answers to the exercises of notebook 00; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import pandas as pd

from recsys_course.synthetic import make_synthetic


# ------------------------------------------------------------------------------------------ dense_core_density
def _qualifying(ratings, min_user, min_item):
    per_user = ratings.groupby("userId").size()
    per_item = ratings.groupby("movieId").size()
    return per_user.index[per_user >= min_user], per_item.index[per_item >= min_item]


def _core_of_filtered_frame(ratings, min_user, min_item):
    users, items = _qualifying(ratings, min_user, min_item)
    inside = ratings[ratings["userId"].isin(users) & ratings["movieId"].isin(items)]
    if inside.empty:
        return 0.0
    return len(inside) / (inside["userId"].nunique() * inside["movieId"].nunique())


def _core_sequential_filter(ratings, min_user, min_item):
    per_user = ratings.groupby("userId").size()
    kept = ratings[ratings["userId"].isin(per_user.index[per_user >= min_user])]
    per_item = kept.groupby("movieId").size()
    items = per_item.index[per_item >= min_item]
    if kept.empty or len(items) == 0:
        return 0.0
    return kept["movieId"].isin(items).sum() / (kept["userId"].nunique() * len(items))


def _core_strict(ratings, min_user, min_item):
    per_user = ratings.groupby("userId").size()
    per_item = ratings.groupby("movieId").size()
    users, items = per_user.index[per_user > min_user], per_item.index[per_item > min_item]
    if len(users) == 0 or len(items) == 0:
        return 0.0
    inside = ratings["userId"].isin(users) & ratings["movieId"].isin(items)
    return inside.sum() / (len(users) * len(items))


def _core_nan_when_empty(ratings, min_user, min_item):
    users, items = _qualifying(ratings, min_user, min_item)
    inside = ratings["userId"].isin(users) & ratings["movieId"].isin(items)
    return inside.sum() / float(len(users) * len(items)) if len(users) * len(items) else float("nan")


def _core_percent(ratings, min_user, min_item):
    users, items = _qualifying(ratings, min_user, min_item)
    if len(users) == 0 or len(items) == 0:
        return 0.0
    inside = ratings["userId"].isin(users) & ratings["movieId"].isin(items)
    return 100 * inside.sum() / (len(users) * len(items))


# ------------------------------------------------------------------------------------------ half_stars_by_user
def _half(ratings):
    return ratings["rating"] * 2 % 2 == 1


def _half_over_ratings(ratings):
    return float(_half(ratings).mean())


def _half_forgot_four_and_a_half(ratings):
    half = ratings["rating"].isin([0.5, 1.5, 2.5, 3.5])
    return float(half.groupby(ratings["userId"]).mean().mean())


def _whole_by_user(ratings):
    return float((~_half(ratings)).groupby(ratings["userId"]).mean().mean())


def _users_with_a_half_star(ratings):
    return float(_half(ratings).groupby(ratings["userId"]).any().mean())


def _half_median_over_users(ratings):
    return float(_half(ratings).groupby(ratings["userId"]).mean().median())


# ------------------------------------------------------------------------------------------ top_rater_share
def _years(ratings):
    return pd.to_datetime(ratings["timestamp"], unit="s", utc=True).dt.year


def _top_rater_count(ratings, year):
    in_year = ratings[_years(ratings) == year]
    return int(in_year.groupby("userId").size().max()) if len(in_year) else 0


def _top_rater_over_all_ratings(ratings, year):
    in_year = ratings[_years(ratings) == year]
    return in_year.groupby("userId").size().max() / len(ratings) if len(in_year) else 0.0


def _top_rater_of_all_years(ratings, year):
    in_year = ratings[_years(ratings) == year]
    top = ratings.groupby("userId").size().idxmax()
    return float((in_year["userId"] == top).mean()) if len(in_year) else 0.0


def _top_rater_nanoseconds(ratings, year):
    years = pd.to_datetime(ratings["timestamp"]).dt.year  # read as nanoseconds: every rating falls in 1970
    in_year = ratings[years == year]
    return in_year.groupby("userId").size().max() / len(in_year) if len(in_year) else 0.0


def _top_rater_nan_for_empty_year(ratings, year):
    in_year = ratings[_years(ratings) == year]
    return in_year.groupby("userId").size().max() / len(in_year) if len(in_year) else float("nan")


# ------------------------------------------------------------------------------------------ selection_gap
def _gap(n_users, n_items, per_user, *, seed=0, to="all", sign=1.0, temperatures=(0.5, 2.0, 1000.0)):
    out = {}
    for t in temperatures:
        synth = make_synthetic(n_users=n_users, n_items=n_items, ratings_per_user=per_user, temperature=t,
                               seed=seed)
        observed = synth.ratings["rating"]
        if to == "all":
            truth = synth.true_ratings().mean()
        elif to == "rated":
            truth = synth.true_ratings()[synth.ratings["userId"] - 1, synth.ratings["movieId"] - 1].mean()
        else:
            truth = 0.0
        out[t] = sign * float(observed.mean() - truth)
    return out


def _gap_to_rated_pairs(n_users, n_items, per_user):
    return _gap(n_users, n_items, per_user, to="rated")


def _gap_reversed(n_users, n_items, per_user):
    return _gap(n_users, n_items, per_user, sign=-1.0)


def _gap_other_seed(n_users, n_items, per_user):
    return _gap(n_users, n_items, per_user, seed=1)


def _gap_mean_observed(n_users, n_items, per_user):
    return _gap(n_users, n_items, per_user, to="none")


def _gap_list(n_users, n_items, per_user):
    return [1.11, 0.41, 0.0]


WRONG = {
    "00.dense_core_density": [
        ("density of the filtered frame (empty rows dropped)", _core_of_filtered_frame),
        ("movies counted after the user filter", _core_sequential_filter),
        ("strict > instead of >=", _core_strict),
        ("nan for an empty block", _core_nan_when_empty),
        ("a percentage", _core_percent),
    ],
    "00.half_stars_by_user": [
        ("the share over all ratings", _half_over_ratings),
        ("forgot 4.5", _half_forgot_four_and_a_half),
        ("the share of whole stars", _whole_by_user),
        ("the share of users with a half star", _users_with_a_half_star),
        ("the median over users", _half_median_over_users),
    ],
    "00.top_rater_share": [
        ("the count, not the share", _top_rater_count),
        ("divided by all ratings", _top_rater_over_all_ratings),
        ("the top rater of all years", _top_rater_of_all_years),
        ("timestamps read as nanoseconds", _top_rater_nanoseconds),
        ("nan for a year without ratings", _top_rater_nan_for_empty_year),
    ],
    "00.selection_gap": [
        ("gap to the true ratings of the rated pairs", _gap_to_rated_pairs),
        ("gap with the sign reversed", _gap_reversed),
        ("another seed", _gap_other_seed),
        ("the mean observed rating, not the gap", _gap_mean_observed),
        ("a list instead of a dict", _gap_list),
    ],
    "00.quiz": [
        ("the random block blamed on unrated movies", {1: "a", 2: "b", 3: "c", 4: 38, 5: 0.75}),
        ("float64 instead of float32", {1: "b", 2: "b", 3: "c", 4: 76.5, 5: 0.75}),
        ("Gini 1 for one movie with everything", {1: "b", 2: "b", 3: "c", 4: 38, 5: 1.0}),
        ("a letter that is not an option", {1: "b", 2: "e", 3: "c", 4: 38, 5: 0.75}),
        ("a number where a letter is due", {1: "b", 2: "b", 3: 3, 4: 38, 5: 0.75}),
    ],
}
