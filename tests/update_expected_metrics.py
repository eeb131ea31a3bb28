"""Regenerate tests/expected_metrics.json by running every notebook in the smoke profile.

    python tests/update_expected_metrics.py [NN ...]

Keeps hand-set tolerances ({"value": v, "rel": r}) of names that still exist. Review the diff before committing.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys_course.course import runner  # noqa: E402
from recsys_course.record import read_records  # noqa: E402

path = ROOT / "tests" / "expected_metrics.json"
old = json.loads(path.read_text()) if path.exists() else {}
new = dict(old)
with tempfile.TemporaryDirectory() as tmp:
    for nb in runner.discover(ROOT / "notebooks", sys.argv[1:] or None):
        runner.execute(nb, Path(tmp) / nb.name, profile="smoke", cwd=nb.parent)
        records = read_records(Path(tmp) / nb.name)
        previous = old.get(nb.stem, {})
        new[nb.stem] = {name: ({**previous[name], "value": v} if isinstance(previous.get(name), dict) else v)
                        for name, v in records.items()}
        print(f"{nb.stem}: {len(records)} records")
path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
print(f"wrote {path.relative_to(ROOT)}")
