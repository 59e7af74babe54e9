"""Environment settings and the wrappers every suite shares.

Importing this package sets the headless ``MUJOCO_GL`` default (see :mod:`xfer.envs.gl`), which must happen
before mujoco or dm_control is imported; nothing heavy is imported here.
"""

from xfer.envs.gl import use_headless_default

use_headless_default()
