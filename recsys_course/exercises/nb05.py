"""Checks of notebook 05 (autoencoders): the gradient of the masked loss, the lowest multinomial loss a history
allows, the KL divergence to a prior other than N(0, I), an experiment (does a wider network escape the floor
without the mask?) and the questionnaire.

The function checks compare the student's NumPy function with references built on the package and on PyTorch
(autograd of :func:`~recsys_course.models.autoencoders.masked_mse`, ``torch.distributions``) on the notebook's
worked examples, small random cases and edge cases. A hint that names a mistake is shown only when the answer
equals that mistake, computed here.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import cache

import numpy as np
from scipy.special import xlogy

from ..config import ITEM, RATING, USER
from . import exercise
from .answers import Wrong, array, call, close, fmt, number
from .quiz import Choice, Numeric, register_quiz


def _one_number(raw) -> bool:
    """The answer is a single number (not text, a boolean or an array) where an array was asked for."""
    return np.ndim(raw) == 0 and not isinstance(raw, (str, bytes, bool, np.bool_)) and raw is not None


# ------------------------------------------------------------------------------------ 1 · the masked gradient
_R = np.array([[5.0, 0.0, 3.0], [0.0, 4.0, 0.0]])
_R_HAT = np.array([[4.0, 2.5, 3.0], [1.0, 5.0, 0.5]])


def _masked_grad_reference(pred, target, mask) -> np.ndarray:
    """PyTorch's gradient of the package's masked_mse with respect to the predictions."""
    import torch

    from ..models.autoencoders import masked_mse

    p = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    masked_mse(p, torch.tensor(target, dtype=torch.float64), torch.tensor(mask, dtype=torch.float64)).backward()
    return p.grad.numpy()


def _masked_grad_cases():
    rng = np.random.default_rng(5)
    cases = [(_R_HAT, _R, (_R > 0).astype(float), "the example of section 2"),
             (_R_HAT, _R, np.ones_like(_R), "an all-ones mask (the unmasked loss)")]
    for trial in range(3):
        shape = (int(rng.integers(2, 5)), int(rng.integers(3, 7)))
        target = rng.integers(1, 6, size=shape).astype(float)
        mask = (rng.random(shape) < 0.5).astype(float)
        mask.flat[trial] = 1.0  # at least one observed cell
        cases.append((rng.normal(3.0, 1.5, size=shape), target * mask, mask, f"random case {trial} (shape {shape})"))
    cases.append((np.array([[3.0, 1.0], [2.0, 4.0]]), np.zeros((2, 2)), np.zeros((2, 2)),
                  "a mask with no observed cell (the loss is the constant 0)"))
    return cases


@exercise("05.masked_grad")
def check_masked_grad(answer) -> None:
    for pred, target, mask, what in _masked_grad_cases():
        want = _masked_grad_reference(pred, target, mask)
        raw = call(answer, pred, target, mask)
        if _one_number(raw):
            raise Wrong(f"on {what}: got one number, {fmt(raw)}; the gradient has one entry per cell, an array of "
                        f"the shape of pred, {pred.shape}.")
        try:
            got = array(raw, "my_masked_mse_grad(...)", shape=pred.shape)
        except Wrong as exc:
            raise Wrong(f"on {what}: {exc}") from None
        if close(got, want, atol=1e-9):
            continue
        observed = mask.sum()
        loose = (mask == 0) & ~np.isclose(got, 0.0, atol=1e-12)
        if observed == 0 and not close(got, 0.0):
            hint = ("With nothing observed the loss does not depend on any prediction, so every entry of the "
                    "gradient is 0.")
        elif loose.any():
            i, j = np.argwhere(loose)[0]
            hint = (f"Your gradient is {fmt(got[i, j])} at cell ({i}, {j}), where the mask is 0. An unobserved "
                    "cell's prediction does not appear in the masked loss at all.")
            if close(got, 2 * (pred - target) / pred.size):
                hint += " Yours is the gradient of the unmasked loss (every cell a target, the missing ones 0)."
        elif close(got, want / 2) and close(got, 2 * mask * (pred - target) / pred.size):
            hint = (f"Your gradient is half the expected one: either the factor 2 of the derivative of a square is "
                    f"missing, or you divide by all {pred.size} cells instead of the {fmt(observed)} observed ones.")
        elif close(got, want / 2):
            hint = "You are off by a factor 2: what does differentiating a square bring down?"
        elif close(got, 2 * mask * (pred - target) / pred.size):
            hint = ("The zeros are in the right place but the scale is not: the masked loss divides by the number "
                    "of observed cells, not by the number of all cells.")
        elif close(got, -want):
            hint = ("The sign is flipped: raising a prediction that is already too high must increase the loss, "
                    "so the gradient there is positive.")
        else:
            hint = ("Differentiate the masked loss of section 2 with respect to one prediction; the denominator "
                    "(the number of observed cells) is a constant.")
        raise Wrong(f"on {what}: got {fmt(got.ravel())}, expected {fmt(want.ravel())} (row by row). {hint}")


# ------------------------------------------------------------------------------------ 2 · the NLL floor
def _nll_floor_reference(x) -> np.ndarray:
    n = x.sum(1, keepdims=True)
    return -xlogy(x, np.divide(x, n, out=np.zeros_like(x), where=n > 0)).sum(1)


_FLOOR_CASES = [
    (np.array([[1.0, 0.0, 1.0]]), "the history x = (1, 0, 1) of section 5"),
    (np.array([[1.0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]]),
     "three users with 1, 3 and 6 films (0/1 rows, as Mult-VAE's)"),
    (np.array([[2.0, 1, 0, 0], [0, 0, 5, 0]]), "counts: a film taken twice next to one taken once"),
    (np.array([[0.0, 0, 0, 0], [0, 1, 1, 0]]), "a user with no interaction at all (the floor is 0)"),
]


@exercise("05.nll_floor")
def check_nll_floor(answer) -> None:
    for x, what in _FLOOR_CASES:
        want = _nll_floor_reference(x)
        raw = call(answer, x)
        if _one_number(raw) and len(x) > 1:
            raise Wrong(f"on {what}: got one number, {fmt(raw)}; return one floor per user (row), an array of "
                        f"length {len(x)} here.")
        try:
            if _one_number(raw):  # one user, one number: fine
                raw = [number(raw, "my_nll_floor(...)", finite=False)]
            got = array(raw, "my_nll_floor(...)", shape=(len(x),), finite=False)
        except Wrong as exc:
            raise Wrong(f"on {what}: {exc}") from None
        if np.isnan(got).any():
            row = int(np.flatnonzero(np.isnan(got))[0])
            raise Wrong(f"on {what}: got nan for user {row}. A film the user did not take has x = 0 and adds "
                        "nothing: 0·log 0 counts as 0 (its limit), and a user with no film has nothing to explain.")
        if close(got, want, atol=1e-9):
            continue
        n = x.sum(1)
        k = (x > 0).sum(1)
        if close(got, -want) and not close(want, 0.0):
            hint = "That is the log-likelihood; the exercise asks for the negative log-likelihood, which is ≥ 0."
        elif close(got, n * np.log(x.shape[1])):
            hint = ("That is the loss of a decoder that spreads its mass evenly over the whole catalogue "
                    "(π = 1/n for every film). The best decoder for this history wastes no mass on films the "
                    "user did not take.")
        elif close(got, -xlogy(x, x).sum(1)):
            hint = ("Your floor is what π_i = x_i would give (0 for a 0/1 row), but π must sum to 1 over the "
                    "catalogue: with several films, no single one can get probability 1.")
        elif close(got, xlogy(n, k)):
            hint = ("An even split over the films the user took is right for 0/1 rows, not for counts: a film "
                    "taken twice deserves more probability than a film taken once.")
        else:
            hint = ("Minimise −Σ x_i log π_i under the constraint Σ π_i = 1 (a Lagrange multiplier, or try a "
                    "user with two films): how should the optimal π depend on x?")
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# ------------------------------------------------------------------------------------ 3 · the KL to a prior
def _kl_reference(mu, logvar, prior_mu, prior_logvar) -> np.ndarray:
    import torch
    from torch.distributions import Normal, kl_divergence

    def normal(m, lv):
        m, lv = torch.as_tensor(m, dtype=torch.float64), torch.as_tensor(lv, dtype=torch.float64)
        return Normal(m, torch.exp(0.5 * lv))

    q = normal(mu, logvar)
    p = normal(np.broadcast_to(prior_mu, mu.shape).copy(), np.broadcast_to(prior_logvar, mu.shape).copy())
    return kl_divergence(q, p).sum(-1).numpy()


def _kl_cases():
    rng = np.random.default_rng(7)
    prior_mu, prior_lv = np.array([0.5, -1.0]), np.array([np.log(2.0), -0.5])
    return [
        (np.array([[1.0, 0.0]]), np.array([[0.0, np.log(2.0)]]), np.zeros(2), np.zeros(2),
         "the example of section 5 with the prior N(0, I) (KL 0.6534)"),
        (np.tile(prior_mu, (2, 1)), np.tile(prior_lv, (2, 1)), prior_mu, prior_lv,
         "q equal to the prior N(m, diag s²) (KL 0)"),
        (np.array([[1.0]]), np.array([[0.0]]), np.array([0.0]), np.array([np.log(4.0)]),
         "q = N(1, 1) against p = N(0, 4) in one dimension"),
        (rng.normal(size=(3, 4)), rng.normal(0, 0.7, size=(3, 4)), rng.normal(size=4), rng.normal(0, 0.7, size=4),
         "three users, k = 4, a random prior"),
    ]


@exercise("05.kl_to_prior")
def check_kl_to_prior(answer) -> None:
    for mu, logvar, prior_mu, prior_logvar, what in _kl_cases():
        want = _kl_reference(mu, logvar, prior_mu, prior_logvar)
        raw = call(answer, mu, logvar, prior_mu, prior_logvar)
        if _one_number(raw) and len(mu) > 1:
            raise Wrong(f"on {what}: got one number, {fmt(raw)}; return one KL per user (row), an array of "
                        f"length {len(mu)} here: sum over the latent dimensions only.")
        try:
            if _one_number(raw):  # one user, one number: fine
                raw = [number(raw, "my_kl_to_prior(...)")]
            got = array(raw, "my_kl_to_prior(...)", shape=(len(mu),))
        except Wrong as exc:
            raise Wrong(f"on {what}: {exc}") from None
        if close(got, want, atol=1e-9):
            continue
        var, prior_var = np.exp(logvar), np.exp(prior_logvar)
        reversed_kl = _kl_reference(np.broadcast_to(prior_mu, mu.shape).copy(),
                                    np.broadcast_to(prior_logvar, mu.shape).copy(), mu, logvar)
        standard = 0.5 * (mu ** 2 + var - logvar - 1.0).sum(-1)
        var_not_scaled = 0.5 * (prior_logvar - logvar + var + (mu - prior_mu) ** 2 / prior_var - 1.0).sum(-1)
        if close(got, reversed_kl):
            hint = ("That is KL(p‖q), the prior measured from the code. KL is not symmetric: the loss uses "
                    "KL(q‖p), the expectation under q of log q − log p.")
        elif close(got, standard):
            hint = ("Your answer is the KL to N(0, I): it does not use the prior's mean m and variance s². "
                    "Start again from log p(z) for p = N(m, s²).")
        elif close(got, var_not_scaled):
            hint = ("The σ² term is not divided by s²: in log p(z) the whole (z − m)² is divided by 2s², and "
                    "E_q[(z − m)²] = σ² + (μ − m)².")
        else:
            hint = ("Write log q(z) − log p(z) for one dimension, take its expectation under q with "
                    "E_q[(z − μ)²] = σ² and E_q[(z − m)²] = σ² + (μ − m)², then sum over the dimensions. With "
                    "m = 0 and s² = 1 it must become section 5's formula.")
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# ------------------------------------------------------------------------------------ 4 · experiment
WIDE, NARROW, DEMO_EPOCHS = 128, 32, 10
WIDE_TOLERANCE = 0.005  # validation RMSE; seeded and run on one CPU thread, repeatable — the slack covers BLAS
_REFERENCE: dict = {}


@contextmanager
def _one_thread():
    """Train on one CPU thread, as the smoke and lesson profiles do: repeatable, and fast for small models."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


@cache
def _rating_train():
    from ..data import load_movielens
    from ..split import rating_split

    return (rating_split(load_movielens().ratings)[0],)


def _fingerprint(frame) -> tuple:
    return (len(frame), int(frame[USER].sum()), int(frame[ITEM].sum()), round(float(frame[RATING].sum()), 3))


def _unmasked_runs(rating_train) -> dict[int, tuple[float, float]]:
    """{hidden units: (best validation RMSE, mean raw reconstruction of the unrated cells)}, section 2's way."""
    from ..models import AutoRec

    key = _fingerprint(rating_train)
    if key not in _REFERENCE:
        out = {}
        for d in (NARROW, WIDE):
            model = AutoRec(n_factors=d, n_epochs=DEMO_EPOCHS, patience=None, refit=False, masked=False, seed=0,
                            verbose=False).fit(rating_train)
            scores = model.user_embeddings_ @ model.item_embeddings_.T + model.user_bias_[:, None]
            out[d] = (float(model.history_.best_metric), float(scores[~model.seen_.toarray().astype(bool)].mean()))
        _REFERENCE[key] = out
    return _REFERENCE[key]


@exercise("05.unmasked_wide", kind="experiment", inputs=_rating_train)
def check_unmasked_wide(answer, rating_train) -> str:
    with _one_thread():
        raw = call(answer, rating_train)
        if hasattr(raw, "history_"):
            raise Wrong("you returned the fitted model; return its best validation RMSE, one number (the "
                        "'validation RMSE' column of section 2's table).")
        got = number(raw, "my_unmasked_wide(rating_train)")
        runs = _unmasked_runs(rating_train)
    want, unrated = runs[WIDE]
    narrow = runs[NARROW][0]
    if abs(got - want) > WIDE_TOLERANCE:
        if abs(got - narrow) <= WIDE_TOLERANCE:
            hint = f"That is the RMSE of section 2's {NARROW}-unit network; this run has {WIDE} hidden units."
        elif got < 1.5:
            hint = ("An RMSE that low is what a masked network reaches (section 2's table); this experiment keeps "
                    "section 2's unmasked loss.")
        elif abs(got - want ** 2) <= 6 * WIDE_TOLERANCE * want:
            hint = "That looks like a mean squared error; the exercise asks for the RMSE, its square root."
        else:
            hint = (f"Train as section 2 does — {DEMO_EPOCHS} epochs without early stopping, no refit, seed 0, "
                    f"the unmasked loss — with only the width changed to {WIDE}, on all of rating_train (AutoRec "
                    "cuts its validation slice itself), and return the best validation RMSE of the run.")
        raise Wrong(f"your validation RMSE is {fmt(got)}, the course's run gives {fmt(want)} (tolerance "
                    f"±{fmt(WIDE_TOLERANCE)}). {hint}")
    return (f"validation RMSE with {WIDE} hidden units: yours {fmt(got)}, the course's {fmt(want)} ({NARROW} units: "
            f"{fmt(narrow)}). Four times the units and the error is still near 3 stars: the course's wide network "
            f"still reconstructs an unrated cell as {fmt(unrated, 2)} stars on average. The loss asked for 0s "
            "there, and more capacity only fits that target better — the mask, not the size, fixes it.")


# ------------------------------------------------------------------------------------ questionnaire
register_quiz("05", [
    Choice("In section 2 the unmasked AutoRec's held-out RMSE stays near 3 stars for all ten epochs. Why?",
           {"a": "ten epochs are too few: given more, it would learn the ratings as the masked network did",
            "b": "its loss is dominated by the empty cells, about 60 per rating, whose target is 0, so it "
                 "predicts about 0 stars wherever it has no rating — held-out cells included",
            "c": "its learning rate is too high, so Adam overshoots",
            "d": "the held-out films are missing from the columns it was trained on, so it has nothing to encode "
                 "for them"},
           answer="b",
           why="the unmasked loss asks for 0 in every empty cell; the best it can do is reconstruct ≈ 0 there (its "
               "mean over the unrated cells is a few hundredths of a star), and a held-out rating is such a cell.",
           hints={"a": "its training loss flattens after three or four epochs (the progress bars): it has "
                       "converged — to the target its loss sets.",
                  "c": "its loss falls smoothly and then flattens; an overshooting optimiser makes it jump.",
                  "d": "the masked network trains on the same columns and predicts the same held-out ratings "
                       "far better."}),
    Choice("In section 3.3 AutoRec has the lowest test RMSE of the three rating models on films with at least 20 "
           "training ratings, and the highest on films with fewer than 5. Why?",
           {"a": "films with fewer than 5 ratings are absent from AutoRec's training data",
            "b": "a film's code is computed from its own column; one to four ratings give a noisy code, while "
                 "the bias model and BiasedMF fall back on a shrunk item bias",
            "c": "tanh squashes the output, so AutoRec cannot predict extreme ratings for rare films",
            "d": "rare films' test ratings are noisier, and that hurts AutoRec alone"},
           answer="b",
           why="I-AutoRec encodes a film from the ratings it received; an almost empty column is a poor input, "
               "and the median film here has 3 ratings.",
           hints={"a": "a film with no training rating gets the bias baseline's prediction, exactly as "
                       "BiasBaseline; AutoRec does worse than BiasBaseline on this group, so the damage comes from "
                       "films it did train on.",
                  "c": "tanh is the hidden layer; the output r̂ = W h + c is linear and only clipped to the "
                       "rating range.",
                  "d": "noise in the test ratings would hurt every model; why would it hurt the one that encodes "
                       "each film from its own column most?"}),
    Choice("On the ranking track the linear EASE beats Mult-VAE and the DAE on every accuracy metric. Which "
           "reason does the notebook's evidence support?",
           {"a": "the deep models were scored on a different, harder split",
            "b": "the deep models stopped too early: more epochs would have closed the gap",
            "c": "they learn two item × hidden weight matrices from 610 users, while EASE has one penalty and "
                 "a closed-form solution",
            "d": "the deep models model only films with at least 3 interactions, so they cannot recommend the "
                 "test films"},
           answer="c",
           why="too little data for the parameters (and a noisy validation NDCG to choose them): the pattern "
               "Dacrema et al. (2019) found for neural recommenders on small data.",
           hints={"a": "section 6 scores every model on the same split with the same evaluate.",
                  "b": "their number of epochs was chosen on the validation slice, and the curves of 5.1 peak "
                       "and then fall: more epochs overfit.",
                  "d": "EASE drops rare films too (its min_item_count is 5, the deep models' 3), and it still "
                       "wins."}),
    Numeric("I-AutoRec at the paper's size: 500 hidden units over MovieLens-1M's 6,040 users. How many "
            "parameters (weights and biases) does the network have?",
            answer=2 * 6040 * 500 + 500 + 6040, tol=0,
            why="V and W have one row of 500 per user (2 × 6,040 × 500), plus the code's bias b (500) and one "
                "output bias c_u per user (6,040): 6,046,540.",
            hint="count every array in h = g(V r + b), r̂ = W h + c: its shape follows from the input and output "
                 "width (one unit per user) and the code size; do not forget the two biases."),
    Numeric("Mult-VAE's schedule with β_max = 0.2 and T = 100 steps, on 610 users in mini-batches of 64 (the last "
            "one smaller). During which epoch, counted from 1, does β_t first reach 0.2?",
            answer=11, tol=0,
            why="ceil(610 / 64) = 10 steps per epoch: epoch 1 holds t = 0…9, epoch 10 t = 90…99, and t = 100 is "
                "the first step of epoch 11.",
            hint="count the gradient steps in one epoch (a smaller last batch is a step too) and remember that t "
                 "starts at 0 with the first mini-batch."),
])
