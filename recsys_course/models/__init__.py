"""Every model of the course, behind one protocol (see :mod:`recsys_course.models.base`).

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
| ``text_models`` | TextProfile, BERTBasedCF, BERTOffsetCF and the item/user texts they read (notebook 07) |
| ``torch_train`` | the one mini-batch training loop the torch models share (not a model) |
"""
from . import (autoencoders, baselines, content, factorization, masked, neighbors, sequential, temporal,
               text_models)
from .base import NotFittedError, Recommender, UnknownIdError, top_k
from .autoencoders import *  # noqa: F401,F403
from .baselines import *  # noqa: F401,F403
from .content import *  # noqa: F401,F403
from .factorization import *  # noqa: F401,F403
from .masked import *  # noqa: F401,F403
from .neighbors import *  # noqa: F401,F403
from .sequential import *  # noqa: F401,F403
from .temporal import *  # noqa: F401,F403
from .text_models import *  # noqa: F401,F403

__all__ = (["Recommender", "NotFittedError", "UnknownIdError", "top_k"] + baselines.__all__ + neighbors.__all__
           + content.__all__ + factorization.__all__ + autoencoders.__all__ + sequential.__all__
           + masked.__all__ + temporal.__all__ + text_models.__all__)
