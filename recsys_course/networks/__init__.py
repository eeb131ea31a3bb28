"""The course's neural networks, each a top-level ``torch.nn.Module`` you can import, read and ``help()``.

| module | networks |
| --- | --- |
| :mod:`~recsys_course.networks.layers` | seeded initialisation (``uniform``, ``normal``, ``seeded_init``), ``SparseRows``, activations |
| :mod:`~recsys_course.networks.factorization` | ``MFNet`` (biased MF), ``BPRNet`` (notebook 04) |
| :mod:`~recsys_course.networks.autoencoders` | ``AutoRecNet``, ``DAENet``, ``MultVAENet`` (notebook 05) |
| :mod:`~recsys_course.networks.sequential` | ``NeuMFNet``, ``SelfAttention``, ``Block``, ``GRU4RecNet``, ``SASRecNet`` (notebook 06), ``BERT4RecNet`` (notebook 08) |
| :mod:`~recsys_course.networks.text` | ``TextCFNet``: the heads over text vectors of BERTBasedCF / BERTOffsetCF (notebook 07) |
| :mod:`~recsys_course.networks.fm` | ``FMNet``: the factorisation machine (notebook 13) |
| :mod:`~recsys_course.networks.graph` | ``TransENet``, ``transe_distance``, ``margin_ranking_loss``: TransE (notebook 13) |

The models in :mod:`recsys_course.models` build these networks and train them with the one protocol of
:class:`recsys_course.models.torch_train.TorchRecommender`. Importing this package imports torch; importing
:mod:`recsys_course.models` does not.
"""
