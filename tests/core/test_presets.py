"""Named presets: values filled in under explicit keys; unknown names refused at the preset key."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from xfer.dreamer.config import PRESETS as DREAMER_PRESETS
from xfer.dreamer.config import DreamerConfig, PresetName
from xfer.muzero.config import PRESETS as MUZERO_PRESETS
from xfer.muzero.config import PresetName as MuZeroPresetName
from xfer.presets import expand_preset


def test_explicit_keys_win_over_the_preset() -> None:
    presets = {"tiny": {"a": 1, "b": 2}}
    assert expand_preset({"preset": "tiny", "b": 5}, presets) == {"a": 1, "b": 5, "preset": "tiny"}
    assert expand_preset({"b": 5}, presets, default="tiny") == {"a": 1, "b": 5}
    assert expand_preset({"preset": None, "b": 5}, presets, default="tiny") == {"preset": None, "b": 5}
    assert expand_preset({"preset": "huge"}, presets) == {"preset": "huge"}  # left for the field to refuse


@pytest.mark.parametrize(("names", "presets"), [(PresetName, DREAMER_PRESETS),
                                                 (MuZeroPresetName, MUZERO_PRESETS)])
def test_literal_names_every_preset(names: object, presets: dict) -> None:
    assert set(typing.get_args(names)) == set(presets)


def test_unknown_preset_is_refused_at_the_preset_key() -> None:
    with pytest.raises(ValidationError) as info:
        DreamerConfig.model_validate({"preset": "tinny"})
    error = info.value.errors()[0]
    assert error["loc"] == ("preset",) and "'tiny'" in error["msg"]
    assert DreamerConfig.model_validate({"preset": "tiny", "deter": 7}).deter == 7


def test_cpu_dmc_is_cpu_sizes_with_dreamerv2_dmc_settings() -> None:
    cpu, dmc = DreamerConfig.from_preset("cpu"), DreamerConfig.from_preset("cpu_dmc")
    changed = {k for k, v in cpu.model_dump().items() if getattr(dmc, k) != v}
    assert changed == {"preset", "init", "predict_discount", "critic_lr", "slow_critic_every", "amp",
                       "compile"}
    settings = (dmc.init, dmc.predict_discount, dmc.critic_lr, dmc.slow_critic_every)
    assert settings == ("glorot", False, 3e-4, 25)
    assert DreamerConfig.from_preset("small").cnn_depth == 32 and cpu.cnn_depth == 16
