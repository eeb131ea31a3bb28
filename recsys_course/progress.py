"""Progress bars that render the same in a terminal, in JupyterLab and in an executed notebook."""
from __future__ import annotations

import sys

from tqdm.std import tqdm as _tqdm


def progress(iterable=None, **kwargs):
    """A text tqdm bar on stderr (no widgets: committed notebooks keep a readable final bar)."""
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("ncols", 90)
    kwargs.setdefault("mininterval", 0.5)
    return _tqdm(iterable, **kwargs)
