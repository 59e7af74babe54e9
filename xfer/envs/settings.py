"""Environment settings: the recipe's ``env:`` section, resolved against a suite's defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EnvSettings(BaseModel):
    """How to build an environment. ``None`` means "the suite's default" (see ``SuiteSpec.defaults``)."""

    model_config = ConfigDict(extra="forbid")

    image_size: int | None = Field(None, ge=8, description="square image side in pixels")
    action_repeat: int | None = Field(None, ge=1, description="simulator steps per agent step")
    time_limit: int | None = Field(None, ge=1, description="episode length in simulator steps")
    camera: str | int | None = Field(None, description="camera name or id")
    render_quality: Literal["fast", "default"] = Field(
        "fast", description="fast: MuJoCo shadows, multisampling and reflections off (5-15x faster on a CPU)")
    state: bool = Field(False, description="add the simulator's state vector as observation 'state'")
    pixels: bool = Field(True, description="render observation 'image'; false = no rendering (needs state)")
    pad_action_to: int | None = Field(None, ge=1, description="pad actions with zeros to this size")
    workers: int = Field(1, ge=1, description="parallel environment worker processes")
    options: dict[str, Any] = Field(default_factory=dict, description="suite-specific options")

    def resolve(self, defaults: dict[str, Any]) -> EnvSettings:
        """Fill every ``None`` field from the suite's defaults; suite options merge under the recipe's."""
        data = self.model_dump()
        for key, value in defaults.items():
            if key == "options":
                data["options"] = {**value, **data["options"]}
            elif data.get(key) is None:
                data[key] = value
        return EnvSettings.model_validate(data)
