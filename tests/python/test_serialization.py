"""(d) Save/load round trips of FlowPolicy and CriticEnsemble; unreadable files raise naming the file.
Also: config objects (repr, equality, dict and pickle round trips) and state_dict round trips."""

import copy
import pickle

import numpy as np
import pytest

import rldt
from conftest import small_critic_config, small_policy_config


def trained_policy(rng, **kw):
    pol = rldt.FlowPolicy(small_policy_config(**kw), seed=3)
    obs = rng.normal(size=(16, 3)).astype(np.float32)
    act = rng.normal(size=(16, 2, 2)).astype(np.float32)
    for _ in range(3):
        pol.bc_update(obs, act)  # actor, ema and reference now all differ
    return pol


@pytest.mark.parametrize("prediction", ["v_pred", "x_pred"])
def test_policy_round_trip(tmp_path, rng, prediction):
    pol = trained_policy(rng, prediction=prediction, final_action_clip=0.9, activation="silu")
    path = tmp_path / "policy.pt"
    pol.save(path)  # os.PathLike and str are both accepted
    loaded = rldt.FlowPolicy.load(str(path))
    assert loaded.config == pol.config
    for net in ("actor", "ema", "reference"):
        a, b = pol.state_dict(net), loaded.state_dict(net)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{net}.{key}")
    assert not np.array_equal(pol.state_dict("actor")["body.output.weight"],
                              pol.state_dict("reference")["body.output.weight"])
    obs = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True), pol.act(obs, deterministic=True))
    pol.seed(4)
    loaded.seed(4)
    np.testing.assert_array_equal(loaded.sample(obs)[1], pol.sample(obs)[1])


def test_critic_round_trip(tmp_path, rng):
    cr = rldt.CriticEnsemble(small_critic_config(ensemble_size=3, q_target_min=-2.0, q_target_max=3.0), seed=5)
    obs = rng.normal(size=(4, 2, 3)).astype(np.float32)
    chunks = rng.normal(size=(4, 2, 2, 2)).astype(np.float32)
    cr.update(obs, chunks, rng.normal(size=(4, 2)).astype(np.float32))  # online and target now differ
    path = tmp_path / "critic.pt"
    cr.save(path)
    loaded = rldt.CriticEnsemble.load(path)
    assert loaded.config == cr.config
    o, c = obs.reshape(8, 3), chunks.reshape(8, 2, 2)
    np.testing.assert_array_equal(loaded.q(o, c), cr.q(o, c))
    np.testing.assert_array_equal(loaded.q_target(o, c), cr.q_target(o, c))
    assert not np.array_equal(cr.q(o, c), cr.q_target(o, c))


def test_garbage_file_names_the_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    for cls in (rldt.FlowPolicy, rldt.CriticEnsemble):
        with pytest.raises(RuntimeError, match="garbage.pt") as err:
            cls.load(path)
        assert str(path) in str(err.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(RuntimeError, match="empty.pt"):
        rldt.FlowPolicy.load(empty)
    with pytest.raises(RuntimeError, match="missing.pt.*does not exist|does not exist.*missing.pt"):
        rldt.CriticEnsemble.load(tmp_path / "missing.pt")


def test_truncated_file(tmp_path, policy):
    path = tmp_path / "p.pt"
    policy.save(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="cut.pt"):
        rldt.FlowPolicy.load(cut)


def test_wrong_kind_names_the_file(tmp_path, policy, critic):
    p, c = tmp_path / "p.pt", tmp_path / "c.pt"
    policy.save(p)
    critic.save(c)
    with pytest.raises(RuntimeError, match="c.pt.*critic_ensemble"):
        rldt.FlowPolicy.load(c)
    with pytest.raises(RuntimeError, match="p.pt.*flow_policy"):
        rldt.CriticEnsemble.load(p)


def test_save_into_missing_folder(tmp_path, policy):
    with pytest.raises(RuntimeError, match="does not exist"):
        policy.save(tmp_path / "nope" / "p.pt")


def test_state_dict_round_trip(rng, policy, critic):
    other = rldt.FlowPolicy(policy.config, seed=99)
    other.load_state_dict(policy.state_dict("actor"), net="actor")
    obs = rng.normal(size=(3, 3)).astype(np.float32)
    np.testing.assert_array_equal(other.act(obs, deterministic=True), policy.act(obs, deterministic=True))
    sd = policy.state_dict()
    with pytest.raises(ValueError, match="lacks the entry 'body.output.bias'"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "body.output.bias"})
    with pytest.raises(ValueError, match="unknown entry 'extra'"):
        other.load_state_dict(dict(sd, extra=np.zeros(1, np.float32)))
    with pytest.raises(ValueError, match=r"state\['body.output.bias'\]' has shape"):
        other.load_state_dict(dict(sd, **{"body.output.bias": np.zeros(3, np.float32)}))
    c2 = rldt.CriticEnsemble(critic.config, seed=1)
    c2.load_state_dict(critic.state_dict("online"))
    c2.load_state_dict(critic.state_dict("target"), net="target")
    o, a = obs, rng.normal(size=(3, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(c2.q(o, a), critic.q(o, a))


def test_ema_and_reference_copies(rng, policy):
    obs = rng.normal(size=(8, 3)).astype(np.float32)
    act = rng.normal(size=(8, 2, 2)).astype(np.float32)
    before = policy.state_dict("ema")
    policy.bc_update(obs, act)
    actor, ema = policy.state_dict("actor"), policy.state_dict("ema")
    d = policy.config.ema_decay
    for key in ema:
        np.testing.assert_allclose(ema[key], d * before[key] + (1 - d) * actor[key], rtol=1e-5, atol=1e-7)
    policy.load_ema_into_actor()
    for key, value in policy.state_dict("actor").items():
        np.testing.assert_array_equal(value, ema[key])
    policy.refresh_reference()
    for key, value in policy.state_dict("reference").items():
        np.testing.assert_array_equal(value, ema[key])
    policy.update_ema()  # ema == actor now: unchanged
    for key, value in policy.state_dict("ema").items():
        np.testing.assert_allclose(value, ema[key], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", [rldt.FlowPolicyConfig, rldt.CriticConfig, rldt.SvgdConfig, rldt.ActorUpdateConfig])
def test_config_objects(cls):
    default = cls()
    text = repr(default)
    assert text.startswith(cls.__name__ + "(")
    for key in default.to_dict():
        assert f"{key}=" in text
    assert cls(**default.to_dict()) == default
    assert pickle.loads(pickle.dumps(default)) == default
    assert copy.deepcopy(default) == default
    assert copy.copy(default) is not default


def test_config_fields_and_defaults():
    cfg = rldt.FlowPolicyConfig(obs_dim=17, mlp_dims=(64, 64, 64), residual=False)
    assert cfg.obs_dim == 17 and cfg.mlp_dims == [64, 64, 64] and cfg.residual is False
    assert cfg.denoising_steps == 8 and cfg.prediction == "v_pred"  # ALGORITHM.md defaults
    assert cfg != rldt.FlowPolicyConfig()
    u = rldt.ActorUpdateConfig(svgd=rldt.SvgdConfig(svgd_temp=0.05))
    assert u.svgd.svgd_temp == 0.05 and u.n_particles == 8 and u.kl_coef == 0.2 and u.c_cons == 0.5
    u.svgd.svgd_temp = 0.5  # nested configs are edited in place
    assert u.svgd.svgd_temp == 0.5
    assert u.to_dict()["svgd"]["svgd_temp"] == 0.5
    c = rldt.CriticConfig()
    assert c.hidden == [256, 256, 256] and c.target_momentum == 0.995 and c.ensemble_size == 2


def test_policy_config_is_a_copy(policy):
    cfg = policy.config
    cfg.obs_dim = 99
    assert policy.config.obs_dim == 3


def test_version_matches_cmake():
    import re
    from conftest import REPO

    text = (REPO / "CMakeLists.txt").read_text()
    assert re.search(r"project\(rldt VERSION (\S+)", text).group(1) == rldt.__version__
    assert set(rldt.__all__) <= set(dir(rldt))
