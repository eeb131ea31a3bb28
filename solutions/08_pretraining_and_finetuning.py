"""Solutions to the exercises of notebook 08 (pretraining and fine-tuning).

* ``bert_mask`` — choose first, corrupt second. The chosen positions are section 2.2's (real, ``u < mask_prob``,
  and the fallback), which is exactly where the package's ``mask_items`` puts a target; then each chosen position
  becomes ``[MASK]`` (v < 0.8), its random film (0.8 ≤ v < 0.9) or stays itself (v ≥ 0.9). The targets are the
  original film at *every* chosen position. Why the loss must also cover the positions that look unchanged: if
  only ``[MASK]`` positions carried a loss, the model would learn that a visible film is always the right one and
  never build a representation of it from its context; with 10 % random and 10 % unchanged chosen positions, any
  visible film may be one to correct (Devlin et al. 2019). BERT4Rec drops this because at test time the only
  question is an appended ``[MASK]``.
* ``largest_lora_rank`` — invert n·r·(d_in + d_out) ≤ budget: r = ⌊budget / (n (d_in + d_out))⌋ (round down, or
  the budget is exceeded), at most min(d_in, d_out) (BA cannot have a higher rank), and 0 when even rank 1 does not
  fit. With the frozen head's budget, 4 160 = 64² + 64, on this notebook's W_Q and W_V (two 64 × 64 matrices):
  ⌊4 160 / 256⌋ = 16, i.e. 4 096 parameters — the experiment's rank.
* ``best_lora_adapter`` — by Eckart–Young the closest rank-r matrix to ΔW (Frobenius) is the truncated SVD
  U_r Σ_r V_rᵀ (the r largest singular values). Any split with (α/r) B A equal to it works; here B = (r/α) U_r Σ_r
  and A = V_rᵀ. On the lesson run, full fine-tuning's change to the query matrix (ΔW_Q, fine-tuned minus
  pretrained, after the best epoch 3) keeps about 62 % of ‖ΔW_Q‖²_F at rank 4 (and 80 % at rank 8; for W_V 84 %
  at rank 4), against about 22 % for a random Gaussian 64 × 64 matrix: the update full fine-tuning made is close
  to low-rank — the premise of LoRA (Hu et al. 2021), who found the same "low intrinsic rank" in GPT-3's updates.
* ``lora_rank16`` (experiment) — section 4.1's LoRA with ``lora_r=16`` instead of 4: 4 096 trainable parameters,
  the frozen head's budget. On ml-latest-small (lesson profile) none of its epochs beats the pretrained start on the
  validation slice (0.0197 at best against 0.0203), so early stopping keeps epoch 0 like rank 4, and its test
  HR@10 0.0492 (30 of 610 users) and NDCG@10 0.0214 are rank 4's (and the pretrained model's) to the last digit.
  Four times the adapter capacity buys nothing: what limits LoRA here is the pretrained model (and 5 examples per
  user), not the rank.
* BERT-base (quiz, question 5: how many parameters LoRA trains there) — LoRA on W_Q and W_V of its
  12 layers (d = 768) trains 2 × 12 × r × (768 + 768) = 36 864 r parameters: 294 912 at r = 8 (147 456 at r = 4),
  about 0.27 % of its 110 M parameters.
* ``quiz`` — the reasons are printed by ``show_solution("08.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.evaluate import evaluate
from recsys_course.models import BERT4Rec
from recsys_course.models.masked import mask_items


def bert_mask(tokens, u, v, random_tokens, mask_prob, mask_token):
    tokens, v, random_tokens = np.asarray(tokens), np.asarray(v), np.asarray(random_tokens)
    _, targets = mask_items(tokens, u, mask_prob, mask_token)    # section 2.2's choice: a target where chosen
    chosen = targets > 0
    inputs = tokens.copy()
    inputs[chosen & (v < 0.8)] = mask_token
    swap = chosen & (v >= 0.8) & (v < 0.9)
    inputs[swap] = random_tokens[swap]
    return inputs, targets


def largest_lora_rank(budget, d_in, d_out, n_matrices):
    return min(budget // (n_matrices * (d_in + d_out)), d_in, d_out)


def best_lora_adapter(delta_W, r, alpha):
    U, s, Vt = np.linalg.svd(np.asarray(delta_W, dtype=float), full_matrices=False)
    B = (r / alpha) * U[:, :r] * s[:r]
    A = Vt[:r]
    return A, B


def lora_rank_16(pretrained, train, test, arch, finetune):
    model = BERT4Rec(mode="lora", pretrained=pretrained, lora_r=16, verbose=False, **arch, **finetune).fit(train)
    row = evaluate(model, train, test, relevance_threshold=None)
    return {"trainable": model.n_trainable_, "hit@10": row["hit@10"], "ndcg@10": row["ndcg@10"]}


SOLUTIONS = {
    "08.bert_mask": bert_mask,
    "08.largest_lora_rank": largest_lora_rank,
    "08.best_lora_adapter": best_lora_adapter,
    "08.lora_rank16": lora_rank_16,
    "08.quiz": {1: "b", 2: "c", 3: "b", 4: "a", 5: 294912, 6: 1.112},
}
