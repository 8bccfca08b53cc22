"""Compare the compiled physics of rldt's MJCF files with Gymnasium's reference models.

Loads both files with the same (PyPI) MuJoCo and checks every physics-relevant model array
for equality up to `--rtol` (default 1e-12). Run: .venv/bin/python tests/python/compare_mjcf.py
"""
import argparse
import os
import sys

import mujoco
import numpy as np
import gymnasium.envs.mujoco as gm

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = os.path.join(HERE, "..", "..", "assets", "mjcf")
THEIRS = os.path.join(os.path.dirname(gm.__file__), "assets")
PAIRS = {
    "hopper.xml": "hopper.xml",
    "walker2d.xml": "walker2d_v5.xml",
    "half_cheetah.xml": "half_cheetah.xml",
    "ant.xml": "ant.xml",
    "humanoid.xml": "humanoid.xml",
    "inverted_pendulum.xml": "inverted_pendulum.xml",
}
FIELDS = [
    "nq", "nv", "nu", "nbody", "ngeom", "njnt", "ntendon",
    "opt.timestep", "opt.gravity", "opt.integrator", "opt.solver", "opt.iterations",
    "body_parentid", "body_pos", "body_quat", "body_ipos", "body_iquat", "body_mass", "body_inertia",
    "jnt_type", "jnt_bodyid", "jnt_pos", "jnt_axis", "jnt_range", "jnt_limited", "jnt_stiffness",
    "jnt_solref", "jnt_solimp", "jnt_margin", "qpos0", "qpos_spring",
    "dof_armature", "dof_damping", "dof_frictionloss",
    "geom_type", "geom_bodyid", "geom_size", "geom_pos", "geom_quat", "geom_friction", "geom_contype",
    "geom_conaffinity", "geom_condim", "geom_margin", "geom_gap", "geom_solref", "geom_solimp", "geom_solmix",
    "actuator_trnid", "actuator_gear", "actuator_ctrlrange", "actuator_ctrllimited", "actuator_gainprm",
    "actuator_biasprm",
]


def get(m, name):
    obj = m
    for part in name.split("."):
        obj = getattr(obj, part)
    return np.asarray(obj, dtype=float)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtol", type=float, default=1e-12)
    args = ap.parse_args()
    bad = 0
    for ours, theirs in PAIRS.items():
        a = mujoco.MjModel.from_xml_path(os.path.join(OURS, ours))
        b = mujoco.MjModel.from_xml_path(os.path.join(THEIRS, theirs))
        for f in FIELDS:
            x, y = get(a, f), get(b, f)
            if x.shape != y.shape or not np.allclose(x, y, rtol=args.rtol, atol=1e-12):
                bad += 1
                diff = "shape" if x.shape != y.shape else np.max(np.abs(x - y))
                print(f"{ours}: {f} differs ({diff})\n  ours  ={x.ravel()[:12]}\n  theirs={y.ravel()[:12]}")
        print(f"{ours}: compared {len(FIELDS)} fields")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
