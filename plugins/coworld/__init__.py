"""CoWorld (Wang et al., "Making Offline RL Online: Collaborative World Models for Offline Visual
Reinforcement Learning", NeurIPS 2024) as the xfer method ``coworld``.

A target DreamerV2 agent learns from an offline dataset only, helped by source DreamerV2 agents that learn
online in their simulators: Stage A aligns the target encoder to the source's (Eq. 3), Stage B teaches the
source reward head the target's rewards (Eq. 4–5), Stage C bounds the target critic by the source critic
(Eq. 6). Several sources are selected adaptively (Appendix C, Eq. 12). Modules:

- :mod:`.config` — the ``coworld:`` recipe section (Table 7 defaults), cheap to import;
- :mod:`.alignment`, :mod:`.reward`, :mod:`.value`, :mod:`.selection` — the three stages and the selection;
- :mod:`.agents` — building the agents and wiring the stages into the backbone's seams;
- :mod:`.run` — warm-up, alternation, evaluation, checkpoints.

This module imports only pydantic and core registry code.
"""

from __future__ import annotations

from collections.abc import Callable

from xfer_plugins.coworld.config import CoWorldConfig

from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec

SPEC = MethodSpec(
    name="coworld",
    config=CoWorldConfig,
    run="xfer_plugins.coworld.run:run",
    load_agent="xfer_plugins.coworld.run:load_agent",
    description="CoWorld: offline visual RL helped by online source simulators (state/reward alignment, "
                "min-max value constraint, multi-source selection)",
)


@hookimpl
def xfer_register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(SPEC)
