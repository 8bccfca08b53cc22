"""Offscreen rendering (MuJoCo's renderer on OSMesa) through rldt.envs, and PNG / sequence saving."""

import numpy as np
import pytest

from rldt import envs

pytestmark = pytest.mark.skipif(not envs.renderer_available(),
                                reason="rldt built without OSMesa (install libosmesa6-dev, reconfigure)")

TASKS = ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5"]


def not_blank(frame):
    # not one flat colour: shading of the bodies and the floor gives many distinct colours
    flat = frame.reshape(-1, 3)
    return len(np.unique(flat, axis=0)) > 10 and flat.std(axis=0).max() > 10


@pytest.mark.parametrize("task", TASKS)
def test_frame_shape_and_content(task):
    env = envs.make(task, num_envs=2, num_threads=1)
    env.reset(seed=0)
    frame = env.render(index=1, width=96, height=64)
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    assert not_blank(frame), f"{task}: frame looks blank"
    env.close()


def test_frames_follow_the_state(tmp_path):
    env = envs.make("Hopper-v5", num_envs=1, num_threads=1)
    env.reset(seed=0)
    a = env.render(0, 80, 60)
    np.testing.assert_array_equal(env.render(0, 80, 60), a)  # deterministic
    qpos, qvel = env.get_state(0)
    qpos = qpos.copy()
    qpos[2] += 0.8  # tilt the torso: the picture must change
    env.set_state(0, qpos, qvel)
    b = env.render(0, 80, 60)
    assert np.abs(a.astype(int) - b.astype(int)).sum() > 0
    # a different size re-creates the renderer
    assert env.render(0, 40, 30).shape == (30, 40, 3)
    with pytest.raises(ValueError, match="camera"):
        env.render(0, 40, 30, camera=99)
    with pytest.raises(ValueError, match="frame size"):
        env.render(0, 0, 30)


def test_save_png_and_sequence(tmp_path):
    env = envs.make("Ant-v5", num_envs=1, num_threads=1)
    env.reset(seed=0)
    frames = []
    for _ in range(3):
        frames.append(env.render(0, 64, 48))
        env.step(np.zeros((1, 8)))
    paths = envs.save_frames(tmp_path / "seq", frames)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    # read back with an independent decoder
    try:
        import imageio.v2 as imageio
        read = imageio.imread
    except ImportError:
        import matplotlib.image as mpimg
        read = lambda p: (mpimg.imread(p) * 255).round().astype(np.uint8)  # noqa: E731
    for p, f in zip(paths, frames):
        img = np.asarray(read(p))[..., :3]
        np.testing.assert_array_equal(img, f)
    with pytest.raises(ValueError, match="uint8"):
        envs.save_png(tmp_path / "x.png", frames[0].astype(np.float32))
