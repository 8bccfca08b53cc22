"""Datasets in the D4RL layout: files written by numpy (np.savez, np.savez_compressed) and h5py read
by the C++ library; errors naming the file and key; save_dataset read back by numpy; pretraining
and recording from Python; the normaliser stored with the policy."""

import numpy as np
import pytest

import rldt
from conftest import small_policy_config


def make_data(rng, n=40, obs_dim=3, act_dim=2, episode=10):
    t = np.arange(n)
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": (t == episode * 2 - 1),
        "timeouts": (t % episode == episode - 1) & (t != episode * 2 - 1),
    }


def assert_same(got, want):
    for key in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(got[key], np.asarray(want[key], dtype=np.float32), err_msg=key)
    for key in ("terminals", "timeouts"):
        np.testing.assert_array_equal(got[key], np.asarray(want[key]).astype(bool), err_msg=key)


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_numpy_written_npz(tmp_path, rng, writer):
    data = make_data(rng)
    data["observations"] = data["observations"].astype(np.float64)  # float64 is accepted
    data["terminals"] = data["terminals"].astype(np.uint8)  # uint8 flags too
    data["rewards"] = data["rewards"][:, None]  # (N, 1) rewards as some datasets store them
    data["infos/qpos"] = np.zeros((40, 2))  # other keys are ignored
    path = tmp_path / "d.npz"
    writer(path, **data)
    got = rldt.load_dataset(path)
    data["rewards"] = data["rewards"][:, 0]
    assert_same(got, data)
    assert got["observations"].dtype == np.float32 and got["terminals"].dtype == bool
    assert "next_observations" not in got


def test_h5py_written_hdf5(tmp_path, rng):
    h5py = pytest.importorskip("h5py")
    data = make_data(rng)
    data["next_observations"] = rng.normal(size=(40, 3))
    path = tmp_path / "d.hdf5"
    with h5py.File(path, "w") as f:  # as D4RL ships it: root datasets, bool flags, extra groups
        for key, value in data.items():
            f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.zeros((40, 2)))
        f.create_dataset("metadata/algorithm", data="SAC")
    got = rldt.load_dataset(path)
    assert_same(got, data)
    np.testing.assert_array_equal(got["next_observations"], data["next_observations"].astype(np.float32))
    # float terminals (some D4RL versions) and float64 rewards
    path2 = tmp_path / "d2.h5"
    with h5py.File(path2, "w") as f:
        for key, value in data.items():
            f.create_dataset(key, data=np.asarray(value, dtype=np.float64))
    assert_same(rldt.load_dataset(path2), data)


def test_errors_name_file_and_key(tmp_path, rng):
    data = make_data(rng)
    path = tmp_path / "bad.npz"

    def error(**arrays):
        np.savez(path, **arrays)
        with pytest.raises(rldt.DatasetError) as e:
            rldt.load_dataset(path)
        assert str(path) in str(e.value)
        return str(e.value)

    assert "key 'timeouts': missing" in error(**{k: v for k, v in data.items() if k != "timeouts"})
    assert "key 'actions': has shape (39, 2)" in error(**{**data, "actions": data["actions"][:-1]})
    bad = data["observations"].copy()
    bad[5, 1] = np.nan
    msg = error(**{**data, "observations": bad})
    assert "key 'observations': row 5 column 1" in msg and "finite" in msg
    msg = error(**{**data, "observations": np.asfortranarray(data["observations"])})
    assert "key 'observations'" in msg and "Fortran order" in msg
    msg = error(**{**data, "rewards": data["rewards"].astype(np.complex64)})
    assert "key 'rewards': unsupported dtype '<c8'" in msg
    assert "key 'terminals'" in error(**{**data, "terminals": np.full(40, 2, np.uint8)})
    with pytest.raises(rldt.DatasetError, match="does not exist"):
        rldt.load_dataset(tmp_path / "missing.npz")
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.hdf5", "w") as f:
        f.create_dataset("observations", data=np.zeros((4, 2)))
    with pytest.raises(rldt.DatasetError, match=r"x\.hdf5: key 'actions': missing"):
        rldt.load_dataset(tmp_path / "x.hdf5")


@pytest.mark.parametrize("compress", [True, False])
def test_save_dataset_read_by_numpy(tmp_path, rng, compress):
    data = make_data(rng)
    data["next_observations"] = rng.normal(size=(40, 3)).astype(np.float32)
    path = tmp_path / "out.npz"
    rldt.save_dataset(path, data, compress=compress)
    with np.load(path) as z:
        assert sorted(z.files) == sorted(data)
        assert_same(z, data)
        assert z["terminals"].dtype == bool
    assert_same(rldt.load_dataset(path), data)
    assert rldt.dataset_episodes(data) == [(0, 10), (10, 20), (20, 30), (30, 40)]
    with pytest.raises(ValueError, match=r"data\['actions'\]"):
        rldt.save_dataset(path, {**data, "actions": data["actions"][:5]})
    with pytest.raises(ValueError, match="lacks the key 'rewards'"):
        rldt.save_dataset(path, {k: v for k, v in data.items() if k != "rewards"})


def test_pretrain_and_normalizer(tmp_path, rng):
    # Actions a deterministic function of the observation, obs in [5, 15]: the normaliser matters.
    n = 600
    obs = rng.uniform(5, 15, size=(n, 3)).astype(np.float32)
    act = np.stack([np.sin(obs[:, 0]), np.cos(obs[:, 1])], axis=1).astype(np.float32)
    t = np.arange(n)
    data = {"observations": obs, "actions": act, "rewards": np.zeros(n, np.float32),
            "terminals": np.zeros(n, bool), "timeouts": t % 50 == 49}
    rows = []
    cfg = rldt.PretrainConfig(batch_size=64, n_updates=40, log_freq=20, seed=2)
    policy, info = rldt.pretrain(data, cfg, small_policy_config(obs_dim=1, action_dim=1), callback=rows.append)
    assert [r["update"] for r in info["history"]] == [20, 40] and rows == info["history"]
    assert info["train_episodes"] + info["val_episodes"] == 12
    assert policy.config.obs_dim == 3 and policy.config.action_dim == 2  # taken from the data
    norm = policy.normalizer
    np.testing.assert_allclose(norm["obs_low"], obs.min(0), rtol=1e-6)
    np.testing.assert_allclose(norm["action_high"], act.max(0), rtol=1e-6)
    y = policy.normalize_obs(obs[:4])
    assert y.min() >= -1 and y.max() <= 1
    env_a = policy.action_to_env(np.array([[-1.0, 1.0]], np.float32))
    np.testing.assert_allclose(env_a[0], [act[:, 0].min(), act[:, 1].max()], rtol=1e-5)
    # Stored with the policy.
    path = tmp_path / "p.pt"
    policy.save(path)
    loaded = rldt.FlowPolicy.load(path)
    for key, value in norm.items():
        np.testing.assert_array_equal(loaded.normalizer[key], value)
    # Seeded: the same run gives the same losses; the callback may stop it.
    again, info2 = rldt.pretrain(data, cfg, small_policy_config(), callback=lambda row: row["update"] < 20)
    assert info2["stopped_early"] and len(info2["history"]) == 1
    for key in ("train_loss", "val_loss", "val_action_mse"):
        assert info2["history"][0][key] == info["history"][0][key]
    # Clearing the normaliser: identity obs; actions then need the env box.
    loaded.set_normalizer()
    assert loaded.normalizer["obs_low"] is None
    np.testing.assert_array_equal(loaded.normalize_obs(obs[:2]), obs[:2])
    with pytest.raises(ValueError, match="env_low"):
        loaded.action_to_env(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="obs_high"):
        loaded.set_normalizer(obs_low=np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        rldt.PretrainConfig(batch_size=0)


def test_record_then_pretrain(tmp_path):
    policy = rldt.FlowPolicy(small_policy_config(obs_dim=4, action_dim=1), seed=0)
    data = rldt.record(policy, "InvertedPendulum-v5", steps=150, noise=0.2, n_envs=2, seed=3,
                       env_options={"max_episode_steps": 40})
    assert data["observations"].shape == (150, 4) and data["actions"].shape == (150, 1)
    assert data["next_observations"].shape == (150, 4)
    episodes = rldt.dataset_episodes(data)
    for b, e in episodes:
        assert e - b <= 40 and (data["terminals"][e - 1] or data["timeouts"][e - 1])
    assert np.all(np.abs(data["actions"]) <= 3.0)  # InvertedPendulum's box
    path = tmp_path / "ip.npz"
    rldt.save_dataset(path, data)
    pretrained, info = rldt.pretrain(path, rldt.PretrainConfig(batch_size=32, n_updates=10, log_freq=5),
                                     small_policy_config(obs_dim=4, action_dim=1))
    assert np.isfinite(info["history"][-1]["train_loss"])
    episodes_only = rldt.record(pretrained, "InvertedPendulum-v5", episodes=2, deterministic=True)
    assert len(rldt.dataset_episodes(episodes_only)) == 2
    with pytest.raises(ValueError, match="exactly one of episodes"):
        rldt.record(policy, "InvertedPendulum-v5")
