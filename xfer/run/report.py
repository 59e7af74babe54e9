"""Printing what a ``python -m`` diagnostic of a run found (``xfer.dreamer.plan_rewards``,
``xfer.muzero.diagnostics``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping

from xfer.errors import XferError


def print_report(compute: Callable[[], Mapping[str, float]], as_json: bool) -> None:
    """Print ``compute()``'s numbers: one JSON object, or one aligned ``name: value`` line each. Bad input
    (an :class:`XferError`) is one line on stderr and exit code 2, as the CLI's errors."""
    try:
        result = compute()
    except XferError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if as_json:
        print(json.dumps(result))
        return
    width = max(map(len, result), default=0)
    for name, value in result.items():
        print(f"{name:>{width}}: {value:.3f}")
