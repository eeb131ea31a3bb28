"""Every collaborative ranking model beats Popularity — on the course's ranking split, and on a seeded random
80/20 split when its validation slice is cut the same way (``val_split="random"``).

Early stopping picks the epoch that scores best on the validation slice, so the slice must resemble the
test: a model validated on each user's *last* ratings but tested on *random* ones can stop at the wrong
epoch and lose to Popularity (Mult-VAE did, before ``val_split`` existed: NDCG@10 0.1616 against Popularity's
0.1652; with ``val_split="random"`` it scores 0.2244).

Size: ml-latest-small itself, the course's smallest data set (a subsample of its users changes which model wins:
the defaults were tuned on all 610 users). About two minutes of CPU for the whole file.

Three models lose on the random split for a reason no validation slice can fix, and are marked as expected
failures (``strict``: if one starts winning, the test says so):

* GRU4Rec and SASRec are next-item models: they read a user's sequence and score what comes *after its end*.
  A random split's test ratings are scattered through the user's past, a question they are not asked
  (NDCG@10 0.063 and 0.091 against 0.165). On the course's leave-last-out track they beat Popularity.
* NeuMF: even validated on a random slice it peaks below Popularity on this split (0.1535 against 0.1652;
  trained 20 epochs without early stopping, 0.1432) — the weakness of the MLP interaction that Rendle, Krichene,
  Zhang & Anderson (2020) measured against a plain dot product.

TransE loses on both splits: its one translation per relation asks every film a user liked to sit at the same
point (e_u + r_rated), which a many-to-many relation cannot satisfy (Bordes et al. 2013 say as much). Notebook 13
shows it: NDCG@10 0.0388 against Popularity's 0.0545 on the ranking track, while a random walk on the same graph
reaches 0.0789.

One pair is left out because it is a tie, not a win or a loss: GRU4Rec on the ranking split sits at Popularity's
level, and which side of it a run lands on depends on the seed and the CPU's floating-point path (early stopping
picks a different epoch). Measured on the 2-core AMD EPYC test machine, seeds 0–3: NDCG@10 0.0450, 0.0552, 0.0564,
0.0611 against Popularity's 0.0545 — a mean of 0.0544. Notebook 06 reports GRU4Rec's numbers as they come.
"""
from __future__ import annotations

import inspect

import pytest

import recsys_course.models as models
from recsys_course.evaluate import evaluate
from recsys_course.models import Popularity, Recommender, TorchRecommender
from recsys_course.split import random_split, ranking_split

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

#: Ranking models that are not collaborative: they read only film content, so on warm films they lose to
#: Popularity by design (notebooks 03 and 07 show it, and show where they win: cold films).
CONTENT_ONLY = {"CosineProfile", "TextProfile"}
#: BERT4Rec's default mode is masked-item *pretraining*, the first half of notebook 08's recipe, not a
#: recommender one would deploy; the fine-tuned modes need a pretrained model and are tested in test_masked.
NOT_A_RECOMMENDER_BY_ITSELF = {"BERT4Rec"}


def _ranking_models():
    """(class, constructor arguments) of every collaborative ranking model: models that rank by default, and
    models with a ``mode`` that can be ``"ranking"`` (the neighbourhood models)."""
    for name in models.__all__:
        cls = getattr(models, name)
        if not (inspect.isclass(cls) and issubclass(cls, Recommender)) or cls in (Recommender, TorchRecommender, Popularity) \
                or name in CONTENT_ONLY | NOT_A_RECOMMENDER_BY_ITSELF:
            continue
        try:
            model = cls()
        except TypeError:  # needs data to be built (content features): not a collaborative model
            continue
        if not model.predicts_ratings:
            yield pytest.param(cls, {}, id=name)
        elif "mode" in model.get_params():
            try:
                if not cls(mode="ranking").predicts_ratings:
                    yield pytest.param(cls, {"mode": "ranking"}, id=f"{name}-ranking")
            except ValueError:
                continue


RANKING_MODELS = list(_ranking_models())


#: (model, split) pairs that lose to Popularity for the reasons in the module docstring.
LOSES_BY_DESIGN = {("GRU4Rec", "random"), ("SASRec", "random"), ("NeuMF", "random"), ("TransE", "ranking"),
                   ("TransE", "random")}
#: (model, split) pairs at Popularity's level, whose side of it depends on the seed and the CPU (module docstring).
TIES = {("GRU4Rec", "ranking")}


@pytest.fixture(scope="module")
def splits(ratings):
    return {"ranking": ranking_split(ratings), "random": random_split(ratings, test_size=0.2, seed=42)}


@pytest.fixture(scope="module")
def popularity(splits):
    return {name: evaluate(Popularity().fit(train), train, test)["ndcg@10"] for name, (train, test) in splits.items()}


def _build(cls, split: str, kwargs: dict):
    params = inspect.signature(cls).parameters
    kwargs = dict(kwargs, **({"verbose": False} if "verbose" in params else {}))
    if split == "random" and "val_split" in params:
        kwargs.update(val_split="random", val_size=0.2)
    return cls(**kwargs)


def _cases():
    for case in RANKING_MODELS:
        cls, kwargs = case.values
        for split in ("ranking", "random"):
            marks = [pytest.mark.xfail(strict=True, reason="loses by design, see the module docstring")] \
                if (cls.__name__, split) in LOSES_BY_DESIGN else []
            if (cls.__name__, split) in TIES:
                marks = [pytest.mark.skip(reason="at Popularity's level: the side depends on seed and CPU (docstring)")]
            yield pytest.param(cls, kwargs, split, id=f"{case.id}-{split}", marks=marks)


@pytest.mark.parametrize(("cls", "kwargs", "split"), list(_cases()))
def test_beats_popularity(cls, kwargs, split, splits, popularity):
    train, test = splits[split]
    ndcg = evaluate(_build(cls, split, kwargs).fit(train), train, test)["ndcg@10"]
    assert ndcg > popularity[split], (f"{cls.__name__} NDCG@10 {ndcg:.4f} <= Popularity {popularity[split]:.4f} "
                                      f"on the {split} split")
