"""``python -m neuraldbg.dap``: the debug adapter on stdin/stdout."""

from __future__ import annotations

import logging
import os
import sys

from neuraldbg.dap import run_stdio


def main() -> int:
    level = os.environ.get("NEURALDBG_LOG", "WARNING").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_stdio()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
