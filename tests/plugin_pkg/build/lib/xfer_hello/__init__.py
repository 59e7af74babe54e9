"""A minimal third-party xfer plugin: one method, ``hello``, that takes random actions and logs returns."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xfer import hookimpl
from xfer.registry import MethodSpec
from xfer.testing import FAKE_SUITE


class HelloConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    episodes: int = Field(2, ge=1, description="random episodes to run")


@hookimpl
def xfer_register_methods(register: Any) -> None:
    register(MethodSpec(name="hello", config=HelloConfig, run="xfer_hello.method:run",
                        description="random actions, logged returns"))


@hookimpl
def xfer_register_suites(register: Any) -> None:
    register(FAKE_SUITE)  # a plugin may register suites too; here xfer's tiny test suite
