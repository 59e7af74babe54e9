#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels benchmarks/gpu_check.py needs on a GPU machine whose image has
# torch, numpy, typer, rich, pluggy, pyyaml, tensorboard, imageio and opencv but not these (Python 3.12,
# x86-64), into .whl/ (ignored by git). Meta-World (and so vid2act, coworld) and ale-py (efficientzero,
# xtra) add about 47 MB; dm_control (57 MB) and imageio-ffmpeg (68 MB) are left out: the check needs
# neither (videos off). Versions are the ones CI installs. Then, on the GPU machine, with .whl carried:
#   python3 -m pip install -q --no-index --no-deps --no-compile .whl/*.whl
#   python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .    # xfer and its plugins
#   MUJOCO_GL=egl PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT/gpu_check.json --budget-s 450
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
for spec in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
            gymnasium==1.4.0 farama-notifications==0.0.6 mujoco==3.3.0 metaworld==3.1.1 ale-py==0.12.1; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
done
du -sh .whl
