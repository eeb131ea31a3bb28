"""Plausible wrong answers to the exercises of notebook 08; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import math

import numpy as np

from recsys_course.evaluate import evaluate
from recsys_course.models import BERT4Rec
from recsys_course.models.masked import mask_items

RIGHT_QUIZ = {1: "b", 2: "c", 3: "b", 4: "a", 5: 294912, 6: 1.112}


# ---- 08.bert_mask
def _chosen(tokens, u, mask_prob, mask_token):
    return mask_items(tokens, u, mask_prob, mask_token)[1] > 0


def _bert_targets_only_at_mask(tokens, u, v, random_tokens, mask_prob, mask_token):
    chosen = _chosen(tokens, u, mask_prob, mask_token)
    inputs = tokens.copy()
    inputs[chosen & (v < 0.8)] = mask_token
    swap = chosen & (v >= 0.8) & (v < 0.9)
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(inputs == mask_token, tokens, 0)


def _bert_no_fallback(tokens, u, v, random_tokens, mask_prob, mask_token):
    chosen = (tokens > 0) & (u < mask_prob)
    inputs = tokens.copy()
    inputs[chosen & (v < 0.8)] = mask_token
    swap = chosen & (v >= 0.8) & (v < 0.9)
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(chosen, tokens, 0)


def _bert_swapped_tails(tokens, u, v, random_tokens, mask_prob, mask_token):
    chosen = _chosen(tokens, u, mask_prob, mask_token)
    inputs = tokens.copy()
    inputs[chosen & (v < 0.8)] = mask_token
    swap = chosen & (v >= 0.9)                       # random and unchanged swapped
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(chosen, tokens, 0)


def _bert_every_real_position(tokens, u, v, random_tokens, mask_prob, mask_token):
    real = tokens > 0                                 # 80/10/10 on every film, u ignored
    inputs = tokens.copy()
    inputs[real & (v < 0.8)] = mask_token
    swap = real & (v >= 0.8) & (v < 0.9)
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(real, tokens, 0)


def _bert_targets_are_inputs(tokens, u, v, random_tokens, mask_prob, mask_token):
    chosen = _chosen(tokens, u, mask_prob, mask_token)
    inputs = tokens.copy()
    inputs[chosen & (v < 0.8)] = mask_token
    swap = chosen & (v >= 0.8) & (v < 0.9)
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(chosen, inputs, 0)


def _bert_random_on_padding(tokens, u, v, random_tokens, mask_prob, mask_token):
    chosen = _chosen(tokens, u, mask_prob, mask_token)
    inputs = tokens.copy()
    inputs[chosen & (v < 0.8)] = mask_token
    swap = (v >= 0.8) & (v < 0.9)                     # the random film put wherever v says, padding too
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(chosen, tokens, 0)


# ---- 08.largest_lora_rank
def _rank_rounded(budget, d_in, d_out, n_matrices):
    return min(round(budget / (n_matrices * (d_in + d_out))), d_in, d_out)


def _rank_one_matrix(budget, d_in, d_out, n_matrices):
    return min(budget // (d_in + d_out), d_in, d_out)


def _rank_no_cap(budget, d_in, d_out, n_matrices):
    return budget // (n_matrices * (d_in + d_out))


def _rank_full_matrix_count(budget, d_in, d_out, n_matrices):
    return min(budget // (n_matrices * d_in * d_out), d_in, d_out)


def _rank_at_least_one(budget, d_in, d_out, n_matrices):
    return max(1, min(budget // (n_matrices * (d_in + d_out)), d_in, d_out))


def _rank_float(budget, d_in, d_out, n_matrices):
    return min(budget / (n_matrices * (d_in + d_out)), d_in, d_out)


def _rank_sqrt(budget, d_in, d_out, n_matrices):
    return math.isqrt(budget // n_matrices)


# ---- 08.best_lora_adapter
def _svd(delta_W):
    return np.linalg.svd(np.asarray(delta_W, float), full_matrices=False)


def _adapter_no_scale(delta_W, r, alpha):
    U, s, Vt = _svd(delta_W)
    return Vt[:r], U[:, :r] * s[:r]


def _adapter_smallest(delta_W, r, alpha):
    U, s, Vt = _svd(delta_W)
    return Vt[-r:], (r / alpha) * U[:, -r:] * s[-r:]


def _adapter_swapped(delta_W, r, alpha):
    U, s, Vt = _svd(delta_W)
    return (r / alpha) * U[:, :r] * s[:r], Vt[:r]


def _adapter_no_sigma(delta_W, r, alpha):
    U, s, Vt = _svd(delta_W)
    return Vt[:r], (r / alpha) * U[:, :r]


def _adapter_scale_inverted(delta_W, r, alpha):
    U, s, Vt = _svd(delta_W)
    return Vt[:r], (alpha / r) * U[:, :r] * s[:r]


def _adapter_product(delta_W, r, alpha):
    U, s, Vt = _svd(delta_W)
    return (U[:, :r] * s[:r]) @ Vt[:r]


# ---- 08.lora_rank16
def _lora_rank_unchanged(pretrained, train, test, arch, finetune):
    model = BERT4Rec(mode="lora", pretrained=pretrained, verbose=False, **arch, **finetune).fit(train)
    row = evaluate(model, train, test, relevance_threshold=None)
    return {"trainable": model.n_trainable_, "hit@10": row["hit@10"], "ndcg@10": row["ndcg@10"]}


def _lora_hits_as_users(pretrained, train, test, arch, finetune):
    return {"trainable": 4096, "hit@10": 27, "ndcg@10": 0.0196}


def _lora_full_finetuning(pretrained, train, test, arch, finetune):
    return {"trainable": pretrained.n_parameters_, "hit@10": 0.0311, "ndcg@10": 0.0139}


def _lora_tuple(pretrained, train, test, arch, finetune):
    return (4096, 0.0443, 0.0196)


def _lora_missing_key(pretrained, train, test, arch, finetune):
    return {"trainable": 4096, "ndcg@10": 0.0196}


def _lora_sasrec_numbers(pretrained, train, test, arch, finetune):
    return {"trainable": 4096, "hit@10": 0.0705, "ndcg@10": 0.0344}


WRONG = {
    "08.bert_mask": [
        ("targets only where the input shows [MASK]", _bert_targets_only_at_mask),
        ("no fallback for a window with nothing chosen", _bert_no_fallback),
        ("the random and unchanged tails swapped", _bert_swapped_tails),
        ("80/10/10 on every film, u ignored", _bert_every_real_position),
        ("targets copied from the corrupted inputs", _bert_targets_are_inputs),
        ("random films written on padding", _bert_random_on_padding),
    ],
    "08.largest_lora_rank": [
        ("rounded to the nearest rank", _rank_rounded),
        ("the budget spent on one matrix", _rank_one_matrix),
        ("no cap at min(d_in, d_out)", _rank_no_cap),
        ("counted d_in × d_out per rank", _rank_full_matrix_count),
        ("never below rank 1", _rank_at_least_one),
        ("a fractional rank", _rank_float),
        ("a guess from a square root", _rank_sqrt),
    ],
    "08.best_lora_adapter": [
        ("the scale α/r forgotten", _adapter_no_scale),
        ("the smallest singular values kept", _adapter_smallest),
        ("(B, A) returned instead of (A, B)", _adapter_swapped),
        ("the singular values left out", _adapter_no_sigma),
        ("multiplied by α/r instead of divided", _adapter_scale_inverted),
        ("the product returned instead of the pair", _adapter_product),
    ],
    "08.lora_rank16": [
        ("lora_r left at 4", _lora_rank_unchanged),
        ("HR@10 as a number of users", _lora_hits_as_users),
        ("full fine-tuning instead of LoRA", _lora_full_finetuning),
        ("a tuple instead of a dict", _lora_tuple),
        ("a missing key", _lora_missing_key),
        ("SASRec's numbers copied", _lora_sasrec_numbers),
    ],
    "08.quiz": [
        ("the frozen head blamed on its size", {**RIGHT_QUIZ, 1: "a"}),
        ("pretraining credited with the test films", {**RIGHT_QUIZ, 2: "a"}),
        ("full fine-tuning read as the loser", {**RIGHT_QUIZ, 3: "a"}),
        ("one matrix per layer counted", {**RIGHT_QUIZ, 5: 147456}),
        ("the fallback forgotten", {**RIGHT_QUIZ, 6: 0.6}),
        ("a letter that is not an option", {**RIGHT_QUIZ, 4: "e"}),
        ("a number where a letter is due", {**RIGHT_QUIZ, 1: 2}),
    ],
}
