"""CoWorld's cross-dynamics DMC tasks, built by editing dm_control's MJCF when the environment is made.

- uphill / downhill: gravity tilted by 15° about the y axis, (∓2.54, 0, −9.47) m/s² (uphill pulls back,
  against the direction of travel +x); the floor plane is drawn 4× larger; the side camera is rolled by the
  same 15° so gravity points straight down in the image and the floor looks like a slope.
- walker-nofoot: the right foot geom shrinks to size 0.001; cheetah-nopaw: the front foot (``ffoot``) geom.
Rewards and tasks are dm_control's own (walker-walk, cheetah-run); nothing is written to site-packages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np
from lxml import etree

GRAVITY = 9.81
TILT_DEGREES = 15.0
FLOOR_SCALE = 4.0
SHRUNK_SIZE = 0.001


@dataclass(frozen=True)
class Modification:
    domain: str
    task: str
    slope: int = 0  # +1 uphill, -1 downhill, 0 none
    shrink_geom: str | None = None


MODIFICATIONS: dict[str, Modification] = {
    "walker-uphill": Modification("walker", "walk", slope=+1),
    "walker-downhill": Modification("walker", "walk", slope=-1),
    "walker-nofoot": Modification("walker", "walk", shrink_geom="right_foot"),
    "cheetah-uphill": Modification("cheetah", "run", slope=+1),
    "cheetah-downhill": Modification("cheetah", "run", slope=-1),
    "cheetah-nopaw": Modification("cheetah", "run", shrink_geom="ffoot"),
}
FLOOR_GEOM = {"walker": "floor", "cheetah": "ground"}
SIDE_CAMERA = "side"


def tilted_gravity(slope: int) -> np.ndarray:
    """Gravity for a slope of TILT_DEGREES: uphill (+1) has a backward (−x) component."""
    angle = math.radians(TILT_DEGREES)
    return np.array([-slope * GRAVITY * math.sin(angle), 0.0, -GRAVITY * math.cos(angle)])


def modified_xml(mod: Modification, xml: str | bytes, assets: dict[str, bytes]) -> str:
    """Return the domain's MJCF ``xml`` with ``mod`` applied."""
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if mod.slope:
        gravity = tilted_gravity(mod.slope)
        option = root.find("option")
        if option is None:
            option = etree.SubElement(root, "option")
        option.set("gravity", _fmt(gravity))
        floor = _named(root, "geom", FLOOR_GEOM[mod.domain])
        size = [float(v) for v in floor.get("size").split()]
        floor.set("size", _fmt([size[0] * FLOOR_SCALE, size[1] * FLOOR_SCALE, *size[2:]]))
        _roll_camera(root, xml, assets, gravity)
    if mod.shrink_geom:
        geom = _named(root, "geom", mod.shrink_geom)
        geom.set("size", _fmt([SHRUNK_SIZE] * len(geom.get("size").split())))
    return etree.tostring(root, encoding="unicode")


def _roll_camera(root: etree._Element, xml: str | bytes, assets: dict[str, bytes],
                 gravity: np.ndarray) -> None:
    """Roll the side camera about its optical axis so that ``gravity`` points straight down in the image."""
    model = mujoco.MjModel.from_xml_string(xml if isinstance(xml, str) else xml.decode(), assets)
    quat = model.cam_quat[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, SIDE_CAMERA)].copy()
    roll = -math.atan2(-gravity[0], -gravity[2])  # camera x is world +x for both domains' side cameras
    rolled = np.zeros(4)
    mujoco.mju_mulQuat(rolled, quat, np.array([math.cos(roll / 2), 0.0, 0.0, math.sin(roll / 2)]))
    camera = _named(root, "camera", SIDE_CAMERA)
    for attr in ("euler", "xyaxes", "zaxis", "axisangle", "quat"):
        camera.attrib.pop(attr, None)
    camera.set("quat", _fmt(rolled))


def _named(root: etree._Element, tag: str, name: str) -> etree._Element:
    found = root.find(f".//{tag}[@name='{name}']")
    if found is None:
        raise KeyError(f"no <{tag} name={name!r}> in the model")
    return found


def _fmt(values: np.ndarray | list[float]) -> str:
    return " ".join(f"{v:.6g}" for v in values)
