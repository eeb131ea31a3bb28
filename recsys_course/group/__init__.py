r"""Group recommendation (notebook 10): one list for several people choosing together.

A group is a set of members; the system knows each member's scores for the films (from any model of the course)
and must return one list for all of them. MovieLens has no real groups, so they are built
(:func:`make_groups`); in the synthetic world (:func:`recsys_course.synthetic.make_synthetic` with ``n_groups``)
every member's true utility is known, so satisfaction is measured exactly (:func:`true_satisfaction`).

* :mod:`~recsys_course.group.strategies` — :data:`STRATEGIES` (average, least misery, most pleasure, average
  without misery, Borda, approval, multiplicative), :func:`aggregate`, :func:`rank_normalise`, :func:`fair_list`;
* :mod:`~recsys_course.group.groups` — :func:`as_groups` (the two forms of a group list), :func:`make_groups`
  (random, similar or dissimilar groups);
* :mod:`~recsys_course.group.recommender` — :class:`GroupRecommender` (score aggregation, ``"profile"``,
  ``"fair"``) and :func:`profile_scores`;
* :mod:`~recsys_course.group.evaluation` — :func:`evaluate_groups`, :func:`true_satisfaction`,
  :func:`group_summary`, :func:`summarise`;
* :mod:`~recsys_course.group.choices` — :func:`simulate_group_choices`, :func:`strategy_choice_accuracy`,
  :class:`AttentionAggregator` (its network: :mod:`~recsys_course.group.network`).

A group list is a DataFrame ``groupId, userId`` (one row per member) or a mapping ``{groupId: [userId, ...]}``;
every function accepts both. Ties between films are broken by catalogue position (ascending movieId), as
everywhere in the course. Importing this package does not import torch (only fitting the attention model does).
"""
from .choices import CHOICE_RULES, AttentionAggregator, simulate_group_choices, strategy_choice_accuracy
from .evaluation import evaluate_groups, group_summary, summarise, true_satisfaction
from .groups import GROUP_KINDS, SIMILARITY, as_groups, make_groups
from .recommender import EXCLUDE_SEEN, GROUP_STRATEGIES, NORMALISE, PROFILE_MODELS, GroupRecommender, profile_scores
from .strategies import (
    STRATEGIES,
    THRESHOLD_STRATEGIES,
    aggregate,
    approval,
    average,
    average_without_misery,
    borda,
    fair_list,
    least_misery,
    most_pleasure,
    multiplicative,
    rank_normalise,
)

__all__ = ["STRATEGIES", "THRESHOLD_STRATEGIES", "GROUP_STRATEGIES", "GROUP_KINDS", "EXCLUDE_SEEN", "NORMALISE",
           "PROFILE_MODELS", "CHOICE_RULES", "SIMILARITY", "average", "least_misery", "most_pleasure",
           "average_without_misery", "borda", "approval", "multiplicative", "aggregate", "rank_normalise", "fair_list",
           "as_groups", "make_groups", "GroupRecommender", "profile_scores", "evaluate_groups", "true_satisfaction",
           "group_summary", "summarise", "simulate_group_choices", "strategy_choice_accuracy", "AttentionAggregator"]
