"""Where the page templates and static files are.

In a checkout (and an editable install) ``templates/`` and ``static/`` sit beside ``app/``; a
regular install (the Docker image) puts them under ``<prefix>/share/pytorch-playground``, from
pyproject's ``data-files``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def assets_root() -> Path:
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "templates").is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "pytorch-playground"


TEMPLATES_DIR = assets_root() / "templates"
STATIC_DIR = assets_root() / "static"
