"""``recsys-course`` — run the course (``run``), render it as a static site (``site``), check a GPU (``gpu-check``),
refresh committed notebooks (``refresh``), list them (``list``), re-point every copy of the repository address
(``sync-links``), start the recommendation service of notebook 12 (``serve``).

``python -m recsys_course run`` is the same as ``recsys-course run``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..config import REPO_DIR
from ..profiles import PROFILES

#: ``recsys-course serve --model``: online models (a closed-form fold-in, recsys_course.retrieval) that fit all of
#: ml-latest-small in about a second with NumPy (BiasedMF trains with torch for minutes; EASE's 9.7k x 9.7k matrix
#: needs 750 MB)
SERVE_MODELS = {"als": "ALS", "implicitals": "ImplicitALS", "puresvd": "PureSVD"}


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys-course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser("run", help="execute the notebooks with papermill and print the leaderboard")
    run_p.add_argument("--profile", choices=PROFILES, default="lesson",
                       help="smoke = seconds (CI), lesson = laptop CPU (default), full = GPU / Colab")
    run_p.add_argument("--notebooks", nargs="*", metavar="NN",
                       help="only these notebooks, by number or name (default: all)")
    run_p.add_argument("--device", help="cpu, cuda, cuda:N, mps (default: auto = CUDA, then MPS, then CPU)")
    run_p.add_argument("--text-model", help="Hugging Face id or folder of the text encoder "
                                            "(default: the packaged all-MiniLM-L6-v2)")
    run_p.add_argument("--dataset", help="run on this data set instead of the profile's own (smoke, lesson: "
                                         "latest-small; full: 1m), e.g. synthetic-1m: ml-1m's size without a "
                                         "download")
    run_p.add_argument("--precision", choices=("float32", "bf16", "fp16", "auto"),
                       help="torch training precision on CUDA (default float32; auto = bf16 where supported)")
    run_p.add_argument("--output", type=Path, default=None,
                       help="folder for executed notebooks and the leaderboard (default: build/<profile>, "
                            "build/<profile>-<dataset> with --dataset)")
    run_p.add_argument("--notebooks-dir", type=Path, default=REPO_DIR / "notebooks", help=argparse.SUPPRESS)
    run_p.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")

    ref_p = sub.add_parser("refresh", help="maintainers: re-execute notebooks IN PLACE in the lesson profile")
    ref_p.add_argument("notebooks", nargs="*", metavar="NN")
    ref_p.add_argument("--notebooks-dir", type=Path, default=REPO_DIR / "notebooks", help=argparse.SUPPRESS)

    links_p = sub.add_parser("sync-links", help="maintainers: copy the repository address of pyproject.toml into "
                                                "every notebook's badge and Colab setup cell, the README and "
                                                "CONTRIBUTING")
    links_p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a copy disagrees")

    site_p = sub.add_parser("site", help="render the executed notebooks of a build folder as a static HTML site")
    site_p.add_argument("--profile", choices=PROFILES, default="lesson",
                        help="render build/<profile> (default: lesson)")
    site_p.add_argument("--build", type=Path, default=None, help="the build folder to render (overrides --profile)")
    site_p.add_argument("--output", type=Path, default=None, help="where to write the site (default: <build>/site)")

    sub.add_parser("bench", add_help=False,
                   help="time every model on ml-latest-small (fit, ms per user, peak memory), next to Surprise and "
                        "implicit where installed; `recsys-course bench --help` for its options")
    sub.add_parser("gpu-check", add_help=False,
                   help="train every torch model on CUDA and on CPU and compare (says 'no CUDA' and exits 0 "
                        "without a GPU); `recsys-course gpu-check --help` for its options")

    serve_p = sub.add_parser("serve", help="start the recommendation service (notebook 12): /recommend, /search, "
                                           "/events, /health on http://127.0.0.1:8000 until Ctrl-C")
    serve_p.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1: this machine only; the service has no "
                              "authentication, so think twice before 0.0.0.0)")
    serve_p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve_p.add_argument("--event-log", type=Path, default=None, metavar="PATH",
                         help="the durable event log, SQLite (default: data/cache/serve/events.sqlite); replayed at "
                              "start-up, so a restart loses no acknowledged event")
    serve_p.add_argument("--model", choices=SERVE_MODELS, default="als",
                         help="the online model fitted on all of ml-latest-small at start-up (default als)")
    serve_p.add_argument("--no-search", action="store_true",
                         help="do not serve /search (skips embedding the films' texts with the text encoder)")

    list_p = sub.add_parser("list", help="list the notebooks")
    list_p.add_argument("--notebooks-dir", type=Path, default=REPO_DIR / "notebooks", help=argparse.SUPPRESS)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own options, parsed by its own module
        from . import bench

        return bench.main(argv[1:])
    if argv[:1] == ["gpu-check"]:  # its own options, parsed by its own module
        from . import gpu_check

        return gpu_check.main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "sync-links":
        return _sync_links(args.check)
    if args.command == "serve":
        return _serve(args)
    if args.command == "site":
        return _site(args.build or Path("build") / args.profile, args.output)
    from . import runner

    try:
        notebooks = runner.discover(args.notebooks_dir, getattr(args, "notebooks", None))
    except (FileNotFoundError, ValueError) as exc:
        print(f"recsys-course: {exc}", file=sys.stderr)
        return 2

    if args.command == "list":
        for nb in notebooks:
            print(nb.name)
        return 0

    if args.command == "refresh":
        results = runner.refresh(notebooks)
        print(runner.timing_table(results))
        return 0 if all(r.ok for r in results) else 1

    return _run(args, notebooks)


def _run(args, notebooks: list[Path]) -> int:
    """``recsys-course run``: one run at a time per build folder; the leaderboard is rebuilt from every executed
    copy of the folder (not only this run's), atomically, and never after an interrupt; Ctrl-C exits 130."""
    from ..profiles import DATASETS
    from . import runner

    dataset = args.dataset.lower() if args.dataset else None
    out_dir = args.output or Path("build") / (args.profile + (f"-{dataset}" if dataset else ""))
    print(f"recsys-course: running {len(notebooks)} notebook(s) in the {args.profile!r} profile on "
          f"{dataset or DATASETS[args.profile]} into {_relative(out_dir)}/", flush=True)
    results: list = []
    try:
        runner.check_options(notebooks, out_dir, args.profile, dataset, args.device)  # before the lock: writes nothing
        with runner.BuildLock(out_dir) as lock:
            if lock.took_over:
                print(f"recsys-course: took over the lock left by a run that is no longer running (PID "
                      f"{lock.took_over.get('pid')}, started {lock.took_over.get('started', '?')})", file=sys.stderr)
            results = runner.run(notebooks, out_dir, profile=args.profile, device=args.device,
                                 text_model=args.text_model, fail_fast=args.fail_fast, dataset=dataset,
                                 precision=args.precision)
            if results and results[-1].interrupted:
                return _interrupted(results, notebooks, out_dir)
            print()
            print(runner.timing_table(results))
            board, paths = runner.build_leaderboard(out_dir, sources=args.notebooks_dir)
    except runner.BuildLocked as exc:
        print(f"recsys-course: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"recsys-course: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # between notebooks, or while the leaderboard was being written
        return _interrupted(results, notebooks, out_dir)
    print()
    print(runner.leaderboard.to_markdown(board))
    print("written: " + ", ".join(_relative(p) for p in paths.values()))
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"FAILED: {r.error}\n        the partly executed notebook is {_relative(out_dir / r.notebook)}",
              file=sys.stderr)
    for line in runner.missing_or_stale(results, board):
        print(f"recsys-course: {line}", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _interrupted(results: list, notebooks: list[Path], out_dir: Path) -> int:
    """What Ctrl-C stopped, what it kept and what it left alone; exit code 130 (128 + SIGINT), as a shell does."""
    from . import runner

    if results:
        print()
        print(runner.timing_table(results))
    done = {r.notebook for r in results}
    current = results[-1] if results and results[-1].interrupted else None
    never = [nb.name for nb in notebooks if nb.name not in done]
    what = (f"during {current.notebook}: its partial executed copy is kept in {_relative(out_dir / current.notebook)} "
            "(marked interrupted)" if current else
            "before any notebook ran" if not results else "before the leaderboard was rewritten")
    print(f"recsys-course: interrupted (Ctrl-C) {what}"
          + (f"; not run: {', '.join(never)}" if never else "")
          + f". The leaderboard in {_relative(out_dir)}/ was left as it was; the next run rebuilds it from the "
            "executed copies.", file=sys.stderr)
    return 130


def _serve(args) -> int:
    from .. import models
    from ..serve import default_event_log

    log = args.event_log or default_event_log()
    model = getattr(models, SERVE_MODELS[args.model])()
    start = time.perf_counter()
    try:
        return _start_service(args, log, model, start)
    except KeyboardInterrupt:  # Ctrl-C before the server runs (uvicorn handles it once it does)
        print("recsys-course: stopped before the service started", file=sys.stderr)
        return 130


def _start_service(args, log, model, start) -> int:
    from ..data import load_movielens
    from ..serve import EventLogError, create_app, run
    from ..stream import OnlineFoldIn

    print(f"recsys-course: fitting {type(model).__name__} on ml-latest-small and replaying the event log "
          f"{_relative(log)} ...", flush=True)
    ml = load_movielens()
    try:
        app = create_app(OnlineFoldIn(model).fit(ml.ratings), event_log=log, search=not args.no_search,
                         movies=ml.movies, tags=ml.tags)
    except EventLogError as exc:
        print(f"recsys-course: {exc}", file=sys.stderr)
        return 2
    health = app.state.service.health()
    print(f"recsys-course: ready in {time.perf_counter() - start:.1f} s ({health['n_events']} event(s) replayed; "
          f"search: {health['search']})")
    print(f"recsys-course: serving on http://{args.host}:{args.port} (/recommend, /search, /events, /health; "
          f"API docs at /docs) — press Ctrl-C to stop", flush=True)
    try:
        run(app, host=args.host, port=args.port)
    except KeyboardInterrupt:  # uvicorn shuts down cleanly on Ctrl-C, then re-raises it
        pass
    print("recsys-course: stopped")
    return 0


def _site(build_dir: Path, output: Path | None) -> int:
    from . import site

    try:
        index = site.build_site(build_dir, output)
    except FileNotFoundError as exc:
        print(f"recsys-course: {exc}", file=sys.stderr)
        return 2
    print(f"recsys-course: site written, open {_relative(index)}")
    return 0


def _sync_links(check: bool) -> int:
    from . import links

    try:
        where = links.location()
        changed = links.sync(check=check)
    except ValueError as exc:
        print(f"recsys-course: {exc}", file=sys.stderr)
        return 2
    if check:
        for name in changed:
            print(f"recsys-course: {name} is out of step with pyproject.toml ({where.repository}, ref "
                  f"{where.ref}: a badge or the Colab setup cell differs); run recsys-course sync-links",
                  file=sys.stderr)
        return 1 if changed else 0
    print(f"recsys-course: {where.repository} ({where.ref}) written into {len(changed)} file(s)"
          + (": " + ", ".join(changed) if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
