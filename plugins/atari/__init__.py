"""Atari 2600 games (ale-py 0.12.1, ROMs bundled) as the xfer suite ``atari``.

Task names are ALE's ROM ids with ``_`` turned into ``-``: ``ms-pacman``, ``demon-attack``,
``wizard-of-wor`` (a CamelCase name such as ``MsPacman`` is refused with the right spelling suggested).
Defaults follow EfficientZero/XTRA: 96×96 RGB, frame skip 4 (``action_repeat``) with max-pooling over the
last two frames, up to 30 no-op starts, sticky actions off, 108,000 frames per episode (``time_limit``), 4
stacked frames along the channel axis (``image`` is 96×96×12: frame t-3's R, G, B, …, the newest frame's
R, G, B last, as EfficientZero stacks them), the full 18-action set with the game's legal actions in
``info["legal_actions"]`` (also the env attribute ``legal_action_mask`` and
:func:`xfer_plugins.atari.env.legal_action_mask`). ``options``: ``color`` (``rgb``, or ``gray``: ALE's
grayscale screen, one channel per frame, ``image`` 96×96×4, EfficientZero's ``gray_scale`` setting, whose
network then has 32 instead of 64 channels), ``train`` (default false: episodic life and reward clipping to
its sign, for training only), ``frame_stack`` (4), ``noop_max`` (30), ``repeat_action_probability`` (0.0).
This module imports nothing heavy (the game list is static; a test compares it with ALE's ROM list).
"""

from __future__ import annotations

from collections.abc import Callable

from xfer.hookspecs import hookimpl
from xfer.registry import SuiteSpec

TASKS: tuple[str, ...] = (
    "adventure", "air-raid", "alien", "amidar", "assault", "asterix", "asteroids", "atlantis2", "atlantis",
    "backgammon", "bank-heist", "basic-math", "battle-zone", "beam-rider", "berzerk", "blackjack", "bowling",
    "boxing", "breakout", "carnival", "casino", "centipede", "chopper-command", "combat", "crazy-climber",
    "crossbow", "darkchambers", "defender", "demon-attack", "donkey-kong", "double-dunk", "earthworld",
    "elevator-action", "enduro", "entombed", "et", "fishing-derby", "flag-capture", "freeway", "frogger",
    "frostbite", "galaxian", "gopher", "gravitar", "hangman", "haunted-house", "hero", "human-cannonball",
    "ice-hockey", "jamesbond", "journey-escape", "joust", "kaboom", "kangaroo", "keystone-kapers",
    "king-kong", "klax", "koolaid", "krull", "kung-fu-master", "laser-gates", "lost-luggage", "mario-bros",
    "maze-craze", "miniature-golf", "montezuma-revenge", "mr-do", "ms-pacman", "name-this-game", "othello",
    "pacman", "phoenix", "pitfall2", "pitfall", "pong", "pooyan", "private-eye", "qbert", "riverraid",
    "road-runner", "robotank", "seaquest", "sir-lancelot", "skiing", "solaris", "space-invaders",
    "space-war", "star-gunner", "superman", "surround", "tennis", "tetris", "tic-tac-toe-3d", "time-pilot",
    "trondead", "turmoil", "tutankham", "up-n-down", "venture", "video-checkers", "video-chess",
    "video-cube", "video-pinball", "warlords", "wizard-of-wor", "word-zapper", "yars-revenge", "zaxxon",
)
# XTRA's games (paper, Table 5): the "similar" categories and the "diverse" pretraining / finetuning sets.
SHOOTER_GAMES: tuple[str, ...] = ("assault", "carnival", "centipede", "demon-attack", "phoenix")
MAZE_GAMES: tuple[str, ...] = ("alien", "amidar", "bank-heist", "ms-pacman", "wizard-of-wor")
DIVERSE_PRETRAIN_GAMES: tuple[str, ...] = (
    "carnival", "centipede", "phoenix", "pooyan", "riverraid", "video-pinball", "wizard-of-wor",
    "yars-revenge",
)
DIVERSE_TARGET_GAMES: tuple[str, ...] = ("assault", "battle-zone", "hero", "krull", "seaquest")
XTRA_GAMES: tuple[str, ...] = tuple(dict.fromkeys(
    SHOOTER_GAMES + MAZE_GAMES + DIVERSE_PRETRAIN_GAMES + DIVERSE_TARGET_GAMES))

DEFAULTS: dict[str, object] = {
    "image_size": 96, "action_repeat": 4, "time_limit": 108_000,
    "options": {"color": "rgb", "train": False, "frame_stack": 4, "noop_max": 30,
                "repeat_action_probability": 0.0},
}

SPEC = SuiteSpec(
    name="atari",
    tasks=TASKS,
    make_env="xfer_plugins.atari.env:make_env",
    defaults=DEFAULTS,
    policies={"random": "xfer.envs.policies:random_policy"},
    extra="atari",
    description="Atari 2600 (ALE): 96×96 RGB (or gray), frame skip 4, 4 stacked frames, 18 actions with "
                "legal mask",
)


@hookimpl
def xfer_register_suites(register: Callable[[SuiteSpec], None]) -> None:
    register(SPEC)
