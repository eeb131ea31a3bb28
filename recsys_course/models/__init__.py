"""Every model of the course, behind one protocol (see :mod:`recsys_course.models.base`): ``fit``, ``predict``,
``score``, ``recommend``, ``user_positions`` / ``item_positions``. The networks of the torch models are in
:mod:`recsys_course.networks`; the names of the hyper-parameters follow the glossary in CONTRIBUTING.md, and
their checks are in :mod:`recsys_course.checks`.

| module | models |
| --- | --- |
| ``baselines`` | GlobalMean, BiasBaseline, Popularity (notebook 01) |
| ``neighbors`` | UserKNN, ItemKNN (notebook 02) |
| ``content`` | CosineProfile, ContentBased and the CF + content Hybrid (notebook 03) |
| ``factorization`` | BiasedMF, ALS, PureSVD, ImplicitALS, BPR, EASE (notebook 04) |
| ``autoencoders`` | AutoRec, DAE, MultVAE (notebook 05) |
| ``sequential`` | NeuMF, GRU4Rec, SASRec (notebook 06) |
| ``masked`` | BERT4Rec: masked-item pretraining, then scratch / fine-tuned / frozen / LoRA (notebook 08) |
| ``temporal`` | TimeAwareBias, DecayedItemKNN (notebook 09) |
| ``fm`` | FM, the factorisation machine with optional context features (notebook 13) |
| ``graph`` | RandomWalk (random walk with restart on a knowledge graph), TransE (notebook 13) |
| ``text_models`` | TextProfile, BERTBasedCF, BERTOffsetCF (notebook 07; the texts they read are in :mod:`recsys_course.text`) |
| ``torch_train`` | ``TorchRecommender``, the one training protocol of the torch models (loop, early stopping, refit) |
| ``tuning`` | ``tuning_table(name)`` / ``tuning_tables(notebook)``: the stored tuning grids behind the defaults |
"""
from . import autoencoders, baselines, content, factorization, masked, neighbors, sequential, temporal, text_models
from .autoencoders import *  # noqa: F401,F403
from .base import NotFittedError, Recommender, UnknownIdError, top_k
from .baselines import *  # noqa: F401,F403
from .content import *  # noqa: F401,F403
from .factorization import *  # noqa: F401,F403
from .fm import FM
from .graph import RandomWalk, TransE
from .masked import *  # noqa: F401,F403
from .neighbors import *  # noqa: F401,F403
from .sequential import *  # noqa: F401,F403
from .temporal import *  # noqa: F401,F403
from .text_models import *  # noqa: F401,F403
from .torch_train import TorchRecommender
from .tuning import tuning_table, tuning_table_names, tuning_tables

__all__ = (["Recommender", "TorchRecommender", "NotFittedError", "UnknownIdError", "top_k", "tuning_table", "tuning_tables",
            "tuning_table_names"] + baselines.__all__ + neighbors.__all__
           + content.__all__ + factorization.__all__ + autoencoders.__all__ + sequential.__all__
           + masked.__all__ + temporal.__all__ + text_models.__all__ + ["FM", "RandomWalk", "TransE"])
