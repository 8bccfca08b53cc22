"""rldt: Reinforcement Learning with Density Transport (Python bindings of the C++ library).

The classes and functions live in the compiled extension ``rldt._core``; see its docstring
(``help(rldt._core)``) for the conventions: numpy float32 arrays in and out (float64 is accepted
and rounded), shape symbols (B, N, P, H, d, A, K, O, E, M, S, T), per-object seeded generators,
and the exceptions (``rldt.ArgumentError``, a ``ValueError``, for bad arguments).
"""

from ._core import (
    ActorBatch,
    ActorUpdateConfig,
    ActorUpdater,
    ArgumentError,
    CriticConfig,
    CriticEnsemble,
    DatasetError,
    ExplorationConfig,
    FlowPolicy,
    FlowPolicyConfig,
    InferencePolicy,
    PretrainConfig,
    RewardScaler,
    RldtTrainerConfig,
    RunConfig,
    Sac,
    SacConfig,
    SacPolicy,
    SacTrainer,
    SacTrainerConfig,
    SvgdConfig,
    actor_update,
    blas_num_threads,
    dataset_episodes,
    load_dataset,
    nstep_targets,
    pretrain,
    record,
    save_dataset,
    svgd_direction,
    tanh_gaussian_log_prob,
    set_blas_num_threads,
    td_lambda_targets,
)

from . import envs  # noqa: E402  (native MuJoCo tasks with Gymnasium's vector API)
from .trainer import Policy, Trainer, load_config  # noqa: E402

__version__ = "0.1.0"  # keep equal to project(rldt VERSION ...) in CMakeLists.txt

__all__ = [
    "ActorBatch",
    "ActorUpdateConfig",
    "ActorUpdater",
    "ArgumentError",
    "CriticConfig",
    "CriticEnsemble",
    "DatasetError",
    "ExplorationConfig",
    "FlowPolicy",
    "FlowPolicyConfig",
    "InferencePolicy",
    "PretrainConfig",
    "RewardScaler",
    "RldtTrainerConfig",
    "RunConfig",
    "Sac",
    "SacConfig",
    "SacPolicy",
    "SacTrainer",
    "SacTrainerConfig",
    "Policy",
    "load_config",
    "SvgdConfig",
    "Trainer",
    "actor_update",
    "blas_num_threads",
    "dataset_episodes",
    "load_dataset",
    "nstep_targets",
    "pretrain",
    "record",
    "save_dataset",
    "set_blas_num_threads",
    "svgd_direction",
    "tanh_gaussian_log_prob",
    "td_lambda_targets",
    "envs",
    "__version__",
]
