"""``python -m sqlalchemy_chronicle``: the ``chronicle`` command line (see :mod:`.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
