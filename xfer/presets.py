"""Named presets for pydantic configs: ``preset: tiny`` plus single overrides in a recipe.

Used by a config's ``model_validator(mode="before")``: the preset's values are filled in first and the keys
the recipe gives explicitly win. An unknown name is left in place for the config's ``preset`` field, a
``Literal`` of the preset names, to reject with the choices at the right key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def expand_preset(data: Any, presets: Mapping[str, Mapping[str, Any]], default: str | None = None) -> Any:
    """``data`` with the named (or ``default``) preset's values under its explicit keys."""
    if not isinstance(data, dict):
        return data
    name = data.get("preset", default)
    if name not in presets:
        return data
    return {**presets[name], **data}
