r"""Apache Spark for the course (notebook 15): one session, the course's frames in Spark, and Spark's ALS behind
the course's model protocol.

* :func:`spark_session` — a local Spark session with the course's settings in one place: ``local[cores]``,
  bounded driver memory, no web UI and no console progress bars, every temporary file (``spark.local.dir``, the
  SQL warehouse, checkpoints) in a folder of its own under ``build/spark/`` of the repository, removed when Python
  exits; the JVM's own output goes to ``build/spark/jvm.log`` instead of the notebook, and Spark logs only errors.
  Without Java it raises :class:`JavaMissingError`, whose message says how to install Java 17.
* :func:`to_spark` — a ratings frame as a Spark DataFrame, after checking its columns and that its ids fit Spark's
  32-bit integers.
* :class:`SparkALS` — ``pyspark.ml.recommendation.ALS`` as a course :class:`~recsys_course.models.base.Recommender`
  (so :func:`recsys_course.evaluate.evaluate` scores it); :meth:`SparkALS.from_model` wraps an ``ALSModel`` fitted
  elsewhere.
* :func:`als_wr_half_step` — Spark's half-step in NumPy: the regularisation of each row scaled by its number of
  ratings (ALS-WR, Zhou et al. 2008), built on the course's :func:`~recsys_course.models.factorization.als_half_step`.
* :func:`block_traffic` — how Spark's block ALS partitions users and items, and which factors each block needs.

pyspark is imported only inside these functions: ``import recsys_course`` never loads it (nor the JVM).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_bool, check_int, check_number, require_known_users
from .config import ITEM, RATING, REPO_DIR, USER, in_a_clone
from .data import DataError, check_ratings
from .models.base import Recommender, UnknownIdError

__all__ = ["spark_session", "session_settings", "java_missing_reason", "JavaMissingError", "to_spark", "SparkALS",
           "als_wr_half_step", "block_traffic", "jvm_cpu_seconds", "INT32_MAX"]

INT32_MAX = 2 ** 31 - 1
JAVA_MIN_VERSION = 17

JAVA_ADVICE = (
    "Spark runs on the Java virtual machine: install Java 17 and restart the kernel — Debian/Ubuntu: "
    "`sudo apt-get install -y openjdk-17-jre-headless`; macOS: `brew install openjdk@17`; conda: "
    "`conda install -c conda-forge openjdk=17`; Google Colab has it already. If Java is installed elsewhere, point "
    "$JAVA_HOME at it.")

#: The folder every session's temporary files go under (a clone's ``build/``, else the system's temp folder).
SPARK_FOLDER = (REPO_DIR / "build" / "spark") if in_a_clone() else Path(tempfile.gettempdir()) / "recsys-course-spark"

_JVM = {"process": None}   # the JVM this module started (for its CPU time)


class JavaMissingError(RuntimeError):
    """No usable Java: the message says how to install Java 17."""


# --------------------------------------------------------------------------------------------- Java and the session
def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME", "").strip()
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    """The major version ``java -version`` reports (``1.8`` → 8), or None if it cannot be read."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_missing_reason() -> str | None:
    """Why Spark cannot start here (no Java, or one older than 17), with how to install Java 17; None if it can."""
    java = _java_binary()
    if java is None:
        return "no `java` found on PATH or in $JAVA_HOME. " + JAVA_ADVICE
    major = _java_major(java)
    if major is not None and major < JAVA_MIN_VERSION:
        return f"`{java}` is Java {major}; Spark 4 needs Java {JAVA_MIN_VERSION} or newer. " + JAVA_ADVICE
    return None


def session_settings(cores: int = 2, driver_memory: str = "2g", folder: Path | str | None = None,
                     app_name: str = "recsys-course") -> dict[str, str]:
    """The Spark settings of :func:`spark_session`, as ``{key: value}`` (one place for all of them).

    ``folder`` holds the session's temporary files (default: a new folder under ``build/spark/``). On a cluster
    only ``spark.master`` changes (``spark://host:7077``, ``yarn``, ``k8s://…``) and the memory settings grow;
    the code that uses the session stays the same.
    """
    check_int("spark_session", "cores", cores)
    if not isinstance(driver_memory, str) or not re.fullmatch(r"\d+[kmgt]", driver_memory.lower()):
        raise ValueError(f"spark_session: driver_memory must be a JVM size such as '2g' or '512m', got "
                         f"{driver_memory!r}")
    folder = Path(folder) if folder is not None else SPARK_FOLDER / "session"
    return {
        "spark.master": f"local[{cores}]",
        "spark.app.name": app_name,
        "spark.driver.memory": driver_memory,
        "spark.driver.host": "127.0.0.1",           # local mode: no network name lookups
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": str(folder / "tmp"),
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={folder / 'tmp'}",
        "spark.sql.shuffle.partitions": str(2 * cores),   # Spark's default, 200, is for clusters
        "spark.default.parallelism": str(cores),
        "spark.sql.execution.arrow.pyspark.enabled": "false",  # pyarrow is not a dependency of the course
        "spark.recsys_course.folder": str(folder),
    }


def spark_session(cores: int = 2, driver_memory: str = "2g", app_name: str = "recsys-course"):
    """A local Spark session with the course's settings (:func:`session_settings`); the running one if any.

    Starts the JVM (a few seconds), with its output in ``build/spark/jvm.log``, log level ERROR, checkpoints in the
    session's folder, which is deleted when Python exits. Settings of a session that is already running cannot
    change (the JVM reads them at start): ``spark.stop()`` first to start another.

    Raises :class:`JavaMissingError` (how to install Java 17) when Java is missing or too old.
    """
    reason = java_missing_reason()
    if reason is not None:
        raise JavaMissingError("Spark cannot start: " + reason)
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    SPARK_FOLDER.mkdir(parents=True, exist_ok=True)
    _remove_stale_sessions()
    folder = Path(tempfile.mkdtemp(prefix=f"session-{os.getpid()}-", dir=SPARK_FOLDER))
    settings = session_settings(cores, driver_memory, folder, app_name)
    for sub in ("tmp", "warehouse", "checkpoint"):
        (folder / sub).mkdir(exist_ok=True)
    conf = SparkConf().setAll(list(settings.items()))
    log = SPARK_FOLDER / "jvm.log"
    try:
        sc = SparkContext(conf=conf, gateway=_launch_jvm(conf, log))
    except Exception as exc:  # the JVM's own words are in its log
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
        raise RuntimeError(f"Spark did not start ({exc}); the end of {log}:\n" + "\n".join(tail)) from exc
    sc.setLogLevel("ERROR")
    sc.setCheckpointDir(str(folder / "checkpoint"))
    session = SparkSession(sc)
    atexit.register(_clean_up, session, folder)
    return session


def _launch_jvm(conf, log: Path):
    """Start the JVM with its stdout and stderr in ``log`` (not the notebook); None if pyspark has one already."""
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    if getattr(SparkContext, "_gateway", None) is not None:  # a stopped session's JVM is reused by pyspark
        return None
    with open(log, "w") as out:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": subprocess.STDOUT})
    _JVM["process"] = getattr(gateway, "proc", None)
    return gateway


def _remove_stale_sessions() -> None:
    """Delete the folders of sessions whose Python process is gone (a kernel killed before its exit handlers ran)."""
    for folder in SPARK_FOLDER.glob("session-*"):
        match = re.fullmatch(r"session-(\d+)-.*", folder.name)
        if match is None:
            shutil.rmtree(folder, ignore_errors=True)  # no owner recorded
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive, another user's: leave it
            pass


def _clean_up(session, folder: Path) -> None:
    try:
        session.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def jvm_cpu_seconds() -> float | None:
    """CPU seconds (user + system) the JVM started by :func:`spark_session` has used so far; None where it cannot
    be read (another JVM, or no ``/proc``). ``time.process_time()`` counts only Python's own process: Spark's work
    happens in the JVM."""
    proc = _JVM["process"]
    stat = Path(f"/proc/{proc.pid}/stat") if proc is not None else None
    if stat is None or not stat.is_file():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------- frames
def _session_folder(spark) -> Path:
    folder = spark.conf.get("spark.recsys_course.folder", None)
    if folder is None:  # a session made elsewhere
        SPARK_FOLDER.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=f"session-{os.getpid()}-frames-", dir=SPARK_FOLDER)
    return Path(folder)


def check_spark_ids(frame: pd.DataFrame, name: str = "ratings") -> None:
    """Spark's ALS stores user and item ids as 32-bit integers: check that ``frame``'s ids are integers in range.

    Raises :class:`~recsys_course.data.DataError` naming the column and the fix (renumber the ids).
    """
    for col in (USER, ITEM):
        values = frame[col]
        if not pd.api.types.is_integer_dtype(values):
            raise DataError(f"{name}[{col!r}] has dtype {values.dtype}, but Spark's ALS needs integer ids; number "
                            f"them first, e.g. codes, labels = pd.factorize({name}[{col!r}]) and keep the labels to "
                            "map back")
        if len(values) and (int(values.min()) < 0 or int(values.max()) > INT32_MAX):
            raise DataError(f"{name}[{col!r}] runs from {int(values.min()):,} to {int(values.max()):,}, outside "
                            f"0 … {INT32_MAX:,}: Spark's ALS stores ids as 32-bit integers. Renumber them, e.g. "
                            f"codes, labels = pd.factorize({name}[{col!r}]), and keep the labels to map back")


def to_spark(spark, frame: pd.DataFrame, name: str = "ratings"):
    """A ratings frame (``userId, movieId, rating``) as a Spark DataFrame with Spark's types (int, int, double).

    Checks the frame (:func:`recsys_course.data.check_ratings`) and its ids (:func:`check_spark_ids`), writes the
    three columns as CSV into the session's folder and reads them back with an explicit schema. Without pyarrow,
    ``spark.createDataFrame(pandas_frame)`` pickles one row at a time — seconds for 100 k rows, far longer for
    millions; a file is how Spark reads data anyway. On a cluster the data is read where it lives instead, e.g.
    ``spark.read.parquet("s3://bucket/ratings/")``: that line is what changes.
    """
    from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

    check_ratings(frame, name=name)
    check_spark_ids(frame, name)
    folder = _session_folder(spark) / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{uuid.uuid4().hex[:8]}.csv"
    frame[[USER, ITEM, RATING]].to_csv(path, index=False, header=False)
    schema = StructType([StructField(USER, IntegerType(), False), StructField(ITEM, IntegerType(), False),
                         StructField(RATING, DoubleType(), False)])
    return spark.read.csv(str(path), schema=schema)


def factors_frame(spark_factors) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, matrix)`` of an ``ALSModel.userFactors`` / ``itemFactors`` DataFrame (``id``, ``features``), sorted
    by id, as NumPy (float64)."""
    rows = spark_factors.orderBy("id").collect()
    ids = np.array([r["id"] for r in rows], dtype=np.int64)
    k = len(rows[0]["features"]) if rows else 0
    return ids, np.array([r["features"] for r in rows], dtype=np.float64).reshape(len(rows), k)


# --------------------------------------------------------------------------------------------- the model
class SparkALS(Recommender):
    r"""``pyspark.ml.recommendation.ALS`` behind the course's protocol: fits on Spark, then scores with the factors it
    learned, so :func:`~recsys_course.evaluate.evaluate` treats it like any course model.

    **Explicit** (``implicit=False``, a rating model): Spark minimises
    :math:`\sum_{(u,i)} (r_{ui} - p_u^\top q_i)^2 + \lambda\big(\sum_u n_u \lVert p_u\rVert^2 + \sum_i n_i
    \lVert q_i\rVert^2\big)` — no biases, and each user's (item's) penalty scaled by its number of ratings
    :math:`n_u` (:math:`n_i`): ALS-WR (Zhou et al. 2008), see :func:`als_wr_half_step`. ``reg`` is Spark's
    ``regParam`` :math:`\lambda`. Prediction :math:`p_u^\top q_i`, unclipped (as Spark's ``transform``); a user or
    item unseen in training gets the training mean (Spark itself answers NaN, or drops the row with
    ``coldStartStrategy="drop"``).

    **Implicit** (``implicit=True``, a ranking model): Hu, Koren & Volinsky's weighted problem with confidence
    :math:`1 + \alpha r_{ui}`, as :class:`~recsys_course.models.ImplicitALS`, but again with :math:`\lambda n_u`.
    Unknown items score ``-inf``.

    ``recommend`` for a user absent from training, or one Spark returned no factors for, raises
    :class:`~recsys_course.models.base.UnknownIdError`. ``n_blocks`` sets ``numUserBlocks`` and ``numItemBlocks``
    (Spark's default is 10; see :func:`block_traffic`). ``spark``: a session (default :func:`spark_session`).
    After ``fit``: ``user_factors_``, ``item_factors_`` (float64 copies of Spark's float32), ``mu_``,
    ``spark_model_`` (the ``ALSModel``), ``fit_seconds_`` (Spark's fit, without moving the data in).
    Cost per iteration as ALS, :math:`O(|\mathcal R| k^2 + (n_u + n_i) k^3)`, spread over the executors, plus
    the shipping of factors between blocks.
    """

    predicts_ratings = True

    def __init__(self, n_factors: int = 32, reg: float = 0.1, n_iters: int = 5, implicit: bool = False,
                 alpha: float = 1.0, n_blocks: int = 10, seed: int = 0, spark=None):
        self.n_factors = n_factors
        self.reg = reg
        self.n_iters = n_iters
        self.implicit = implicit
        self.alpha = alpha
        self.n_blocks = n_blocks
        self.seed = seed
        self.spark = spark
        self.predicts_ratings = not implicit

    def estimator(self):
        """The ``pyspark.ml.recommendation.ALS`` estimator with this model's settings (the course's column names)."""
        from pyspark.ml.recommendation import ALS as SparkEstimator

        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg)
        check_int(self, "n_iters", self.n_iters)
        check_bool(self, "implicit", self.implicit)
        check_number(self, "alpha", self.alpha)
        check_int(self, "n_blocks", self.n_blocks)
        check_int(self, "seed", self.seed, low=0)
        return SparkEstimator(rank=self.n_factors, maxIter=self.n_iters, regParam=float(self.reg),
                              implicitPrefs=self.implicit, alpha=float(self.alpha), numUserBlocks=self.n_blocks,
                              numItemBlocks=self.n_blocks, seed=self.seed, userCol=USER, itemCol=ITEM,
                              ratingCol=RATING, coldStartStrategy="nan")

    @classmethod
    def from_model(cls, model, train: pd.DataFrame, implicit: bool = False) -> SparkALS:
        """A fitted :class:`SparkALS` from an ``ALSModel`` already fitted on ``train`` (no refit)."""
        out = cls(n_factors=int(model.rank), implicit=implicit)
        out._given = model
        return out.fit(train)

    def _fit(self, train, users, items):
        given = self.__dict__.pop("_given", None)
        start = time.perf_counter()
        if given is None:
            spark = self.spark if self.spark is not None else spark_session()
            data = to_spark(spark, train, "train")
            given = self.estimator().fit(data)
        self.fit_seconds_ = time.perf_counter() - start
        self.spark_model_ = given
        self.mu_ = float(train[RATING].mean())
        k = int(given.rank)
        self.user_factors_, self._user_known = self._aligned(given.userFactors, self._user_index, k)
        self.item_factors_, self._item_known = self._aligned(given.itemFactors, self._item_index, k)

    @staticmethod
    def _aligned(spark_factors, index: pd.Index, k: int):
        ids, matrix = factors_frame(spark_factors)
        out = np.zeros((len(index), k))
        known = np.zeros(len(index), dtype=bool)
        pos = index.get_indexer(ids)
        out[pos[pos >= 0]] = matrix[pos >= 0]
        known[pos[pos >= 0]] = True
        return out, known

    def _predict(self, users, items):
        if self.implicit:
            require_known_users(self, users)
        ok = (users >= 0) & (items >= 0)
        ok[ok] = self._user_known[users[ok]] & self._item_known[items[ok]]
        out = np.full(len(users), -np.inf if self.implicit else self.mu_)
        out[ok] = np.einsum("ij,ij->i", self.user_factors_[users[ok]], self.item_factors_[items[ok]])
        return out

    def _score_users(self, users):
        require_known_users(self, users)
        lacking = ~self._user_known[users]
        if lacking.any():
            raise UnknownIdError(f"SparkALS has no factors for user(s) {list(self.user_ids_[users[lacking]][:5])}: "
                                 "Spark's ALS returned none for them (with coldStartStrategy='drop' Spark silently "
                                 "leaves such users out). Serve them with a model that handles new users "
                                 "(Popularity, BiasBaseline).")
        scores = self.user_factors_[users] @ self.item_factors_.T
        scores[:, ~self._item_known] = -np.inf
        return scores


# --------------------------------------------------------------------------------------------- ALS-WR in NumPy
def als_wr_half_step(R, Y, reg: float) -> np.ndarray:
    r"""Spark's explicit half-step (ALS-WR, Zhou et al. 2008): for every row :math:`u` of the sparse matrix ``R``

    .. math:: p_u = (Q_u^\top Q_u + \lambda\, n_u I)^{-1} Q_u^\top r_u,

    with :math:`n_u` the row's number of entries — the course's
    :func:`~recsys_course.models.factorization.als_half_step` (penalty :math:`\lambda`) called once per distinct
    :math:`n_u` with :math:`\lambda n_u`. Rows without entries get 0. Same cost as ``als_half_step``.
    """
    from .models.factorization import als_half_step

    check_number("als_wr_half_step", "reg", reg, positive=True)
    R = sp.csr_matrix(R)
    Y = np.asarray(Y, dtype=np.float64)
    counts = np.diff(R.indptr)
    out = np.zeros((R.shape[0], Y.shape[1]))
    for n in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == n)
        out[rows] = als_half_step(R[rows], Y, reg * float(n))
    return out


# --------------------------------------------------------------------------------------------- blocks
def block_of(ids, n_blocks: int) -> np.ndarray:
    """The block Spark's ALS puts each id in: its hash partitioner maps an integer id to ``id mod n_blocks``."""
    check_int("block_of", "n_blocks", n_blocks)
    return np.mod(np.asarray(ids, dtype=np.int64), n_blocks)


def block_traffic(train: pd.DataFrame, n_user_blocks: int, n_item_blocks: int) -> pd.DataFrame:
    """What block ALS moves in one user half-step: for each (user block, item block) pair, the ratings it holds
    and the item factors the user block needs from the item block (items some user of the block rated).

    Spark sends each item factor only to the user blocks that need it (its "out-blocks"), once per block and
    not once per rating. Returns one row per pair: ``user_block``, ``item_block``, ``ratings``, ``factors_sent``
    (distinct items of the item block rated in the user block) and ``items_in_block``; the sum of
    ``factors_sent`` is the traffic of one half-step, against ``n_items × n_user_blocks`` if every user block got
    every factor. The item half-step mirrors it.
    """
    check_ratings(train, name="train")
    ub = block_of(train[USER].to_numpy(), n_user_blocks)
    ib = block_of(train[ITEM].to_numpy(), n_item_blocks)
    frame = pd.DataFrame({"user_block": ub, "item_block": ib, ITEM: train[ITEM].to_numpy()})
    grid = pd.MultiIndex.from_product([range(n_user_blocks), range(n_item_blocks)],
                                      names=["user_block", "item_block"])
    pairs = frame.groupby(["user_block", "item_block"]).agg(ratings=(ITEM, "size"), factors_sent=(ITEM, "nunique"))
    pairs = pairs.reindex(grid, fill_value=0)
    items = pd.Series(block_of(np.unique(train[ITEM].to_numpy()), n_item_blocks)).value_counts()
    pairs["items_in_block"] = items.reindex(pairs.index.get_level_values("item_block"), fill_value=0).to_numpy()
    return pairs.reset_index()
