"""Execute the course notebooks with papermill and build the leaderboard (the course's main job).

What a run may leave behind, and what it never loses:

* every executed copy is stamped (``metadata.recsys_course.run``: when, profile, data set, device, the sha256 of
  the notebook's code, and ``status``: running, ok, failed or interrupted), so the leaderboard — rebuilt from
  every copy in the build folder, not from the last run (:func:`build_leaderboard`) — knows what is current;
* Ctrl-C stops the current notebook, keeps its partial copy (status ``interrupted``) and returns the results so
  far (:attr:`Result.interrupted`): the caller leaves the leaderboard alone;
* one run at a time per build folder (:class:`BuildLock`).
"""
from __future__ import annotations

import functools
import json
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import ENV_DATASET, ENV_DEVICE, ENV_PRECISION, ENV_PROFILE, ENV_TEXT_MODEL, REPO_DIR
from ..profiles import check_profile
from ..progress import progress
from . import costs, leaderboard

NOTEBOOK_NAME = re.compile(r"^(\d{2})_[a-z0-9_]+\.ipynb$")


@dataclass
class Result:
    notebook: str
    seconds: float
    ok: bool
    error: str = ""
    peak_mib: float | None = None  # the kernel's peak resident memory (None where it cannot be measured)
    interrupted: bool = False  # stopped by Ctrl-C (then ok is False, and the run went no further)


def discover(notebooks_dir: Path | str = REPO_DIR / "notebooks", select=None) -> list[Path]:
    """The course notebooks (``NN_name.ipynb``) in teaching order; ``select`` keeps those whose number or
    name matches (``["00", "01_evaluation"]``)."""
    from ..config import in_a_clone, outside_a_clone_advice

    folder = Path(notebooks_dir)
    found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if not found:
        if folder.resolve() == (REPO_DIR / "notebooks").resolve() and not in_a_clone():
            raise FileNotFoundError(f"no notebooks in {folder}: {outside_a_clone_advice()}")
        raise FileNotFoundError(f"no NN_name.ipynb notebooks in {folder}")
    if not select:
        return found
    chosen = []
    for want in select:
        want = str(want).removesuffix(".ipynb")
        hits = [p for p in found if p.stem == want or p.stem.split("_")[0] == want.zfill(2)]
        if not hits:
            raise ValueError(f"no notebook matches {want!r}; available: {[p.stem for p in found]}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def _describe_failure(exc: Exception, notebook: Path) -> str:
    """Name the notebook and the failing cell (papermill's PapermillExecutionError carries both)."""
    cell = getattr(exc, "cell_index", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    if cell is None:
        return f"{notebook.name} failed before any cell ran: {ename}: {evalue}"
    first_line = (getattr(exc, "source", "") or "").strip().splitlines()[:1]
    starting = f", the cell starting {first_line[0]!r}" if first_line else ""
    return (f"{notebook.name} failed at In [{getattr(exc, 'exec_count', '?')}] (cell {cell} of the executed copy"
            f"{starting}): {ename}: {evalue}")


@functools.lru_cache(maxsize=1)
def _kernel_manager_class():
    """Kernels on IPC sockets (files) where the platform has them, not TCP ports: nothing listens on the network,
    and the kernel does not print its "running over TCP without encryption" warning into the course's output.
    (Built on first use: jupyter_client comes with the ``course`` extra, like papermill.)"""
    from jupyter_client.manager import AsyncKernelManager

    if os.name == "nt":  # no IPC transport on Windows
        return AsyncKernelManager

    # The sockets are files: keep them in a private temporary folder, not in the notebook's working directory
    # (a student's notebooks/ folder, where other tools list and copy files).
    sockets = Path(tempfile.mkdtemp(prefix="recsys-course-kernels-")) / "kernel"

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(sockets))
            super().__init__(**kwargs)

    return IPCKernelManager


@functools.lru_cache(maxsize=1)
def _stamping_engine() -> str:
    """papermill's own engine, registered under a name of ours, that writes the run's stamp into the notebook's
    metadata before papermill first saves the copy: even a copy cut short by a crash says how it was run (and that
    it never finished: status "running")."""
    from papermill.engines import NBClientEngine, papermill_engines

    class StampingEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, run_stamp=None, **kwargs):
            if run_stamp is not None:
                nb.metadata.setdefault("recsys_course", {})["run"] = dict(run_stamp)
            return super().execute_notebook(nb, kernel_name, **kwargs)

    papermill_engines.register("recsys-course", StampingEngine)
    return "recsys-course"


def execute(notebook: Path, output: Path, *, profile: str | None, cwd: Path, inject: bool = True,
            stamp: dict | None = None) -> None:
    """Execute ``notebook`` into ``output`` with papermill (``stamp``: the run's metadata, see :func:`run`)."""
    import papermill as pm

    extra = {"engine_name": _stamping_engine(), "run_stamp": stamp} if stamp is not None else {}
    pm.execute_notebook(str(notebook), str(output), parameters={"profile": profile} if inject else None,
                        kernel_name="python3", cwd=str(cwd), progress_bar=False, log_output=False,
                        kernel_manager_class=_kernel_manager_class(), **extra)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finish_stamp(output: Path, run_id: str, **fields) -> bool:
    """Update the stamp of the executed copy ``output`` (only if it is this run's copy); True if it was."""
    try:
        nb = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no copy yet (the run stopped before papermill wrote it), or a torn one
        return False
    stamp = (nb.get("metadata", {}).get("recsys_course") or {}).get("run") or {}
    if stamp.get("id") != run_id:  # still the copy of an earlier run: leave it as it was
        return False
    stamp.update(fields, finished=_now())
    _write_atomic(output, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def check_options(notebooks: list[Path], out_dir: Path, profile: str, dataset: str | None = None,
                  device: str | None = None) -> str | None:
    """Every choice of a run, checked before anything is written (a ValueError saying what is wrong); returns the
    data set's name in lower case (None: the profile's own)."""
    check_profile(profile)
    if dataset:
        from ..data import check_dataset

        dataset = check_dataset(dataset)  # a DataError (a ValueError) names the choices
    if any(Path(out_dir).resolve() == n.parent.resolve() for n in notebooks):
        raise ValueError("the output folder is the notebooks folder: the course never overwrites notebooks/ "
                         "(maintainers refresh committed outputs with `recsys-course refresh`)")
    check_device(device)
    return dataset


def check_device(device: str | None) -> None:
    """A device the notebooks cannot have stops the run before any notebook starts (a ValueError saying why)."""
    if not device or device == "auto":
        return
    from ..device import get_device

    try:
        get_device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc


def run(notebooks: list[Path], out_dir: Path, profile: str = "lesson", device: str | None = None,
        text_model: str | None = None, fail_fast: bool = False, echo=print, dataset: str | None = None,
        precision: str | None = None) -> list[Result]:
    """Execute each notebook into ``out_dir`` (never over the originals) in ``profile``.

    ``device``, ``text_model``, ``dataset`` (instead of the profile's own, e.g. ``synthetic-1m``) and
    ``precision`` reach the notebooks' kernels as environment variables. Every choice is checked before the first
    notebook starts (a ValueError). Each copy is stamped with how it was run (module docstring). Ctrl-C stops
    the current notebook: its partial copy is kept, stamped ``interrupted``, and the results so far are returned,
    the last one with ``interrupted=True``.
    """
    from ..profiles import DATASETS

    dataset = check_options(notebooks, out_dir, profile, dataset, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_PROFILE] = profile
    if device:
        os.environ[ENV_DEVICE] = device
    if text_model:
        os.environ[ENV_TEXT_MODEL] = text_model
    if dataset:
        os.environ[ENV_DATASET] = dataset
    if precision:
        os.environ[ENV_PRECISION] = precision
    results = []
    bar = progress(notebooks, desc=f"notebooks ({profile})", unit="nb")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        start = time.perf_counter()
        memory = PeakMemory()
        output = out_dir / nb.name
        stamp = {"id": uuid.uuid4().hex, "status": "running", "started": _now(), "profile": profile,
                 "dataset": dataset or DATASETS[profile], "device": device or "auto",
                 "code_sha256": leaderboard.code_digest(nb), "source": nb.name}
        try:
            with memory:
                execute(nb, output, profile=profile, cwd=nb.parent, stamp=stamp)
            finish_stamp(output, stamp["id"], status="ok")
            results.append(Result(nb.name, time.perf_counter() - start, True, peak_mib=memory.peak_mib))
        except KeyboardInterrupt:
            finish_stamp(output, stamp["id"], status="interrupted")
            results.append(Result(nb.name, time.perf_counter() - start, False, f"{nb.name} was interrupted (Ctrl-C)",
                                  peak_mib=memory.peak_mib, interrupted=True))
            break
        except Exception as exc:  # noqa: BLE001 — reported, then the exit code says it
            error = _describe_failure(exc, nb)
            finish_stamp(output, stamp["id"], status="failed", error=error)
            results.append(Result(nb.name, time.perf_counter() - start, False, error, peak_mib=memory.peak_mib))
            if fail_fast:
                break
    bar.close()
    return results


class PeakMemory:
    """The peak resident memory (MiB) of this process's child processes — the notebook's kernel — while the
    ``with`` block runs. Linux only (``/proc``): each child's ``VmHWM`` (its own high-water mark) is polled twice
    a second; ``peak_mib`` stays None elsewhere."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak_mib = interval, None
        self._stop = None

    @staticmethod
    def _children() -> list[str]:
        pids = []
        for task in Path("/proc/self/task").glob("*/children"):
            try:
                pids += task.read_text().split()
            except OSError:
                pass
        return pids

    def _poll(self) -> None:
        for pid in self._children():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # the kernel ended between listing and reading
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    mib = int(line.split()[1]) / 1024
                    self.peak_mib = mib if self.peak_mib is None else max(self.peak_mib, mib)

    def __enter__(self):
        import threading

        if Path("/proc/self/task").is_dir():
            self._stop = threading.Event()

            def loop():
                while not self._stop.wait(self.interval):
                    self._poll()

            self._thread = threading.Thread(target=loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._stop is not None:
            self._stop.set()
            self._thread.join()
        return False


def refresh(notebooks: list[Path], echo=print) -> list[Result]:
    """Maintainers: re-execute notebooks in place in the lesson profile (the committed outputs).

    No parameters are injected, so the notebook keeps its own ``profile = "lesson"`` cell; papermill's
    timing metadata is stripped so that a re-run only changes real outputs.
    """
    results = []
    for nb in notebooks:
        start = time.perf_counter()
        try:
            execute(nb, nb, profile=None, cwd=nb.parent, inject=False)
            ok, error = True, ""
        except Exception as exc:  # noqa: BLE001
            ok, error = False, _describe_failure(exc, nb)
        seconds = time.perf_counter() - start
        strip_run_metadata(nb, seconds if ok else None)
        results.append(Result(nb.name, seconds, ok, error))
        echo(f"{'ok ' if ok else 'FAILED'} {nb.name}: {seconds:.1f} s {error}")
    return results


def strip_run_metadata(path: Path, lesson_seconds: float | None) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb.get("cells", []):
        for key in ("papermill", "execution"):
            cell.get("metadata", {}).pop(key, None)
    if lesson_seconds is not None:
        nb["metadata"]["recsys_course"] = {"lesson_seconds": round(lesson_seconds)}
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def timing_table(results: list[Result]) -> str:
    """Seconds per notebook, and the peak memory of the kernels so far where it is known."""
    memory = any(r.peak_mib is not None for r in results)
    lines = [f"{'notebook':40s} {'seconds':>8s}" + (f" {'peak MiB':>9s}" if memory else "") + "  status"]
    for r in results:
        peak = (f" {r.peak_mib:9.0f}" if r.peak_mib is not None else f" {'':9s}") if memory else ""
        lines.append(f"{r.notebook:40s} {r.seconds:8.1f}{peak}  {'ok' if r.ok else 'FAILED'}")
    lines.append(f"{'total':40s} {sum(r.seconds for r in results):8.1f}")
    return "\n".join(lines)


def build_leaderboard(out_dir: Path, sources: Path | None = None) -> tuple:
    """The leaderboard of a build folder: every executed copy in ``out_dir`` (not only the last run's), stale rows
    marked by comparing each copy with its notebook in ``sources``; written atomically. Returns (board, paths)."""
    board = costs.join(leaderboard.collect(leaderboard.executed_copies(out_dir), sources=sources))
    paths = leaderboard.write(board, out_dir)
    return board, paths


def missing_or_stale(results: list[Result], board) -> list[str]:
    """One line per notebook whose rows are missing from the leaderboard or stale: those of this run that failed,
    then the other copies of the build folder that are stale."""
    stale: dict[str, tuple[str, int]] = {}
    if "stale" in board.columns:
        for (notebook, reason), n in board[board["stale"] != ""].groupby(["notebook", "stale"]).size().items():
            stale[notebook] = (reason, int(n))
    lines, failed = [], set()
    for r in results:
        if r.ok:
            continue
        stem = Path(r.notebook).stem
        failed.add(stem)
        what = "was interrupted" if r.interrupted else "failed"
        if stem in stale:
            lines.append(f"{r.notebook} {what}: the {stale[stem][1]} row(s) it recorded before that are marked stale, "
                         "any later ones are missing")
        else:
            lines.append(f"{r.notebook} {what}: its leaderboard rows (if it has any) are missing")
    for notebook, (reason, n) in sorted(stale.items()):
        if notebook not in failed:
            lines.append(f"{notebook}.ipynb: {n} row(s) stale ({reason}); re-run it: --notebooks "
                         f"{notebook.split('_')[0]}")
    return lines


class BuildLocked(RuntimeError):
    """Another ``recsys-course run`` is writing into the same build folder."""


class BuildLock:
    """One run at a time per build folder: ``<folder>/.recsys-course.lock``, held with an OS lock (``flock``;
    ``msvcrt.locking`` on Windows) for the whole run and removed at the end. The OS drops the lock when its process
    dies, so a lock file left by a killed run (its PID no longer running) is simply taken over; a live holder makes
    ``__enter__`` raise :class:`BuildLocked` naming its PID and start time."""

    NAME = ".recsys-course.lock"

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.took_over: dict | None = None  # what the stale lock file said, if one was taken over
        self._fd: int | None = None

    @staticmethod
    def _try_lock(fd: int) -> bool:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> BuildLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not self._try_lock(fd):
                os.close(fd)
                holder = self._holder()
                raise BuildLocked(
                    f"another recsys-course run (PID {holder.get('pid', '?')}, started {holder.get('started', '?')}) "
                    f"is writing into {self.folder}/; wait for it to finish, or run into another folder with "
                    f"--output (a lock file of a run that is no longer running is taken over by itself)")
            try:  # the file we locked may have been removed by its previous holder meanwhile: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self._holder()
            if previous.get("pid"):
                self.took_over = previous
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": _now(),
                                     "argv": sys.argv[1:]}).encode())
            self._fd = fd
            return self
        raise BuildLocked(f"could not take the lock {self.path}: it keeps changing hands")

    def __exit__(self, *exc) -> bool:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # before closing: nobody can lock the file between the two
            os.close(self._fd)
            self._fd = None
        return False
