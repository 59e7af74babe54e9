"""The hook specifications plugins implement. Register-callback style: each hook gets a `register` function.

A plugin module (found through the ``xfer`` entry-point group) implements any of these with
``@xfer.hookimpl``; an implementation whose name matches no spec is an error (``check_pending``).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("xfer")
hookimpl = pluggy.HookimplMarker("xfer")


@hookspec
def xfer_register_methods(register: Callable[..., None]) -> None:
    """Register training methods: call ``register(MethodSpec(...))`` once per method."""


@hookspec
def xfer_register_suites(register: Callable[..., None]) -> None:
    """Register environment suites: call ``register(SuiteSpec(...))`` once per suite."""
