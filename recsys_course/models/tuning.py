"""The stored tuning runs behind the models' defaults: data files, not code.

Each table is a JSON file in ``recsys_course/tuning/`` (shipped with the package): a grid of hyper-parameter
settings, each with its early-stopping score (``val_ndcg@10``), best epoch and, where measured, the epochs run and
the fit time. :func:`tuning_table` reads one as a DataFrame (one row per setting); :func:`tuning_tables` every table
of a notebook, in the notebook's order. What a table's numbers mean, and how they were measured, is in its
``attrs["about"]``.

=====================  ==========  =================================================
name                   notebook    what was tuned
=====================  ==========  =================================================
``gru4rec``            06          GRU4Rec: ``lr`` × ``n_negatives`` × ``n_factors``
``gru4rec-loss``       06          GRU4Rec: ``loss`` × ``neg_power``
``sasrec``             06          SASRec: ``n_blocks`` × ``lr``
``neumf``              06          NeuMF: ``n_factors`` × ``lr``
``bert4rec-pretrain``  08          BERT4Rec pretraining: ``lr`` × ``last_share`` × ``mask_prob``
``bert4rec-finetune``  08          BERT4Rec fine-tuning: ``mode`` × ``lr``
=====================  ==========  =================================================
"""
from __future__ import annotations

import json
from importlib import resources

import pandas as pd

__all__ = ["tuning_table", "tuning_tables", "tuning_table_names"]

_PACKAGE = "recsys_course.tuning"


def _files() -> dict:
    return {p.name[:-len(".json")]: p for p in resources.files(_PACKAGE).iterdir() if p.name.endswith(".json")}


def tuning_table_names() -> list[str]:
    """The names :func:`tuning_table` accepts, sorted."""
    return sorted(_files())


def tuning_table(name: str) -> pd.DataFrame:
    """One stored tuning grid: one row per setting tried.

    Parameters
    ----------
    name : str
        A table name (case-insensitive), e.g. ``"sasrec"``; see :func:`tuning_table_names`.

    Returns
    -------
    DataFrame with the grid's columns (``attrs["grid"]``), then ``val_ndcg@10``, ``best_epoch`` and any other
    measurements. ``attrs`` also holds ``title`` (the name the notebook prints), ``model`` (the class tuned),
    ``fixed`` (the arguments every setting shared, lists as tuples; everything else at the default), ``notebook`` and ``about``
    (how the runs were made).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    files = _files()
    key = str(name).lower()
    if key not in files:
        raise ValueError(f"tuning_table: name must be one of {sorted(files)}, got {name!r}")
    spec = json.loads(files[key].read_text(encoding="utf-8"))
    table = pd.DataFrame(spec.pop("results"))
    spec["fixed"] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["fixed"].items()}  # as passed
    table.attrs.update(spec, name=key)
    return table


def tuning_tables(notebook: str | None = None) -> dict[str, pd.DataFrame]:
    """Every stored tuning table (of ``notebook``, e.g. ``"06"``, if given) as ``{title: DataFrame}``, in the
    order the notebook shows them; see :func:`tuning_table` for a table's columns and ``attrs``."""
    tables = [tuning_table(name) for name in _files()]
    if notebook is not None:
        tables = [t for t in tables if t.attrs["notebook"] == str(notebook)]
        if not tables:
            raise ValueError(f"tuning_tables: no stored table for notebook {notebook!r}")
    return {t.attrs["title"]: t for t in sorted(tables, key=lambda t: t.attrs["order"])}
