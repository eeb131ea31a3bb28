import sys

if sys.argv[1:2] == ["setup"]:  # standard library only: it runs before the course's dependencies are installed
    from .course.setup_env import main as setup_main

    sys.exit(setup_main(sys.argv[2:]))

try:
    from .course.cli import main

    code = main()
except ModuleNotFoundError as missing:
    if (missing.name or "").startswith("recsys_course"):
        raise
    sys.exit(f"python -m recsys_course: {missing.name} is not installed in this Python ({sys.executable}). Set the "
             "course up first: `python -m recsys_course setup`, then use the venv's Python or its `recsys-course`.")
sys.exit(code)
