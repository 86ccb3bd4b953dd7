"""The command line's entry point (``cfssim`` and ``python -m cfssim``).

SIGINT and SIGTERM handlers are installed before the command line (and the simulator, numpy,
plotly…) is imported, so an interrupt at any moment, imports included, ends with one line on
stderr and status 130 (SIGINT) or 143 (SIGTERM) — never a traceback.
"""

from __future__ import annotations

import sys

from . import _signals


def main(argv: list[str] | None = None) -> int:
    """Run the ``cfssim`` command line; return its exit status (click's own `SystemExit`s,
    e.g. 2 for a usage error, pass through)."""
    _signals.install()
    try:
        from .cli import main as cli

        _signals.check()  # a signal during the imports, should a module have swallowed it
        cli.main(args=argv, prog_name="cfssim")
    except _signals.Interrupted as interrupted:
        return _signals.report(interrupted)
    except BaseException:
        late = _signals.received()  # an interrupt a library turned into its own error
        if late is None:
            raise
        return _signals.report(late)
    return 0


if __name__ == "__main__":
    sys.exit(main())
