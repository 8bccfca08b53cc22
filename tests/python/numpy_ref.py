"""Independent numpy (float64) re-implementations of ALGORITHM.md's formulas.

Written from the specification (sections 1-4) and the documented conventions of the C++
headers, with explicit loops where that keeps them obviously right; the tests compare the
bindings against these on identical inputs.
"""

import math

import numpy as np

# ---------------------------------------------------------------------------
# Section 3: SVGD field
# ---------------------------------------------------------------------------


def lower_median(values):
    """The median as torch.median defines it: for an even count, the lower middle value."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    return s[(len(s) - 1) // 2]


def svgd_direction(queries, particles, grads, svgd_temp=1e-3, bandwidth=-1.0, q_norm="svgd",
                   q_norm_min=0.0, q_norm_max=1e5, q_norm_eps=1e-8, field="normal", last_step=None):
    """phi(y_i) = (1/P) [sum_j K_ij g_j + alpha sum_j K_ij (y_i - a_j) / h_i] per state.

    queries (B, P1, A), particles and grads (B, P2, A). Returns (phi, diagnostics dict).
    """
    y = np.asarray(queries, np.float64)
    a = np.asarray(particles, np.float64)
    g = np.asarray(grads, np.float64)
    B, P1, A = y.shape
    P2 = a.shape[1]
    diag = {}
    gnorm = np.sqrt((g ** 2).sum(-1))  # (B, P2)
    diag["grad_norm"] = float(gnorm.mean())
    total, pairs = 0.0, 0
    for b in range(B):
        for i in range(P2):
            for j in range(P2):
                if i != j:
                    total += math.sqrt(((a[b, i] - a[b, j]) ** 2).sum())
                    pairs += 1
    diag["particle_distance"] = total / pairs if pairs else 0.0
    if field == "delta":
        diag["repulsion_norm"] = 0.0
        diag["bandwidth"] = 0.0
        return g.copy(), diag

    gbar = np.clip(gnorm.mean(1), q_norm_min, q_norm_max)  # (B,)
    alpha = np.full(B, float(svgd_temp))
    if q_norm == "q_grad":
        g = g / (gbar + q_norm_eps)[:, None, None]
    elif q_norm == "svgd":
        alpha = alpha * gbar

    phi = np.zeros((B, P1, A))
    rep_norms, hs = [], []
    for b in range(B):
        for i in range(P1):
            D = np.array([((y[b, i] - a[b, j]) ** 2).sum() for j in range(P2)])
            h = bandwidth if bandwidth > 0 else lower_median(D) / (2.0 * math.log(P2 + 1.0))
            h = max(h, 1e-8)
            K = np.exp(-D / (2.0 * h))
            attract = np.zeros(A)
            repulse = np.zeros(A)
            for j in range(P2):
                attract += K[j] * g[b, j]
                repulse += K[j] * (y[b, i] - a[b, j]) / h
            sign = 1.0
            if field == "hybrid":
                sign = 1.0 if last_step[b, i] else -1.0
            phi[b, i] = (attract + alpha[b] * sign * repulse) / P2
            rep_norms.append(math.sqrt(((repulse / P2) ** 2).sum()))
            hs.append(h)
    diag["repulsion_norm"] = float(np.mean(rep_norms))
    diag["bandwidth"] = float(np.mean(hs))
    return phi, diag


# ---------------------------------------------------------------------------
# Section 2: return targets
# ---------------------------------------------------------------------------


def td_lambda_targets(r, v, term, trunc, gamma, lam, bootstrap_truncated=True):
    """G_t = r_t + gamma (1 - term_t) [(1 - lam) V'_t + lam G_{t+1}]; G_{T-1} bootstraps from V'.

    Truncation bootstraps from V' and cuts the recursion (or counts as termination when
    bootstrap_truncated is False).
    """
    r, v = np.asarray(r, np.float64), np.asarray(v, np.float64)
    term, trunc = np.asarray(term).astype(bool), np.asarray(trunc).astype(bool)
    N, T = r.shape
    G = np.zeros((N, T))
    for n in range(N):
        for t in reversed(range(T)):
            terminal = term[n, t] or (trunc[n, t] and not bootstrap_truncated)
            episode_end = term[n, t] or trunc[n, t]
            if terminal:
                G[n, t] = r[n, t]
            elif t == T - 1 or episode_end:
                G[n, t] = r[n, t] + gamma * v[n, t]
            else:
                G[n, t] = r[n, t] + gamma * ((1 - lam) * v[n, t] + lam * G[n, t + 1])
    return G


def nstep_targets(r, v, term, trunc, gamma, n_steps, bootstrap_truncated=True):
    """G_t = sum_{i<m} gamma^i r_{t+i} + gamma^m V'_{t+m-1}, the window cut at episode/segment ends."""
    r, v = np.asarray(r, np.float64), np.asarray(v, np.float64)
    term, trunc = np.asarray(term).astype(bool), np.asarray(trunc).astype(bool)
    N, T = r.shape
    G = np.zeros((N, T))
    for n in range(N):
        for t in range(T):
            ret = 0.0
            for i in range(n_steps):
                u = t + i
                if u >= T:
                    break
                ret += gamma ** i * r[n, u]
                episode_end = term[n, u] or trunc[n, u]
                if i == n_steps - 1 or u == T - 1 or episode_end:
                    terminal = term[n, u] or (trunc[n, u] and not bootstrap_truncated)
                    if not terminal:
                        ret += gamma ** (i + 1) * v[n, u]
                    break
            G[n, t] = ret
    return G


# ---------------------------------------------------------------------------
# Section 1: the velocity network
# ---------------------------------------------------------------------------


def activation(name, x):
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "mish":
        return x * np.tanh(np.logaddexp(0.0, x))
    if name == "tanh":
        return np.tanh(x)
    if name == "identity":
        return x
    raise ValueError(name)


def linear(sd, prefix, x):
    return x @ np.asarray(sd[prefix + ".weight"], np.float64).T + np.asarray(sd[prefix + ".bias"], np.float64)


def sinusoidal(t, dim):
    half = dim // 2
    freqs = np.exp(-np.arange(half) * math.log(1e4) / (half - 1))
    args = np.asarray(t, np.float64)[:, None] * freqs[None, :]
    return np.concatenate([np.sin(args), np.cos(args)], -1)


def velocity_net(sd, cfg, x, t, obs):
    """Raw output of v_theta(x, t | s): input [flatten(x), time_embedding(t), s]."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    emb = linear(sd, "time.fc2", activation("mish", linear(sd, "time.fc1", sinusoidal(t, cfg.time_dim))))
    h = np.concatenate([x.reshape(n, -1), emb, np.asarray(obs, np.float64)], -1)
    if cfg.residual:
        h = linear(sd, "body.input", h)
        n_blocks = (len(cfg.mlp_dims) - 1) // 2
        for b in range(n_blocks):
            y = linear(sd, f"body.blocks.{2 * b}", activation(cfg.activation, h))
            y = linear(sd, f"body.blocks.{2 * b + 1}", activation(cfg.activation, y))
            h = h + y
        out = linear(sd, "body.output", h)
    else:
        n_layers = len(cfg.mlp_dims) + 1
        for i in range(n_layers):
            h = linear(sd, f"body.layers.{i}", h)
            if i + 1 < n_layers:
                h = activation(cfg.activation, h)
        out = h
    return out.reshape(n, cfg.horizon_steps, cfg.action_dim)


def velocity(cfg, out, x, t):
    if cfg.prediction == "v_pred":
        return out
    return (out - x) / (1.0 - np.asarray(t))[:, None, None]


def expected_target(cfg, out, x, t):
    if cfg.prediction == "x_pred":
        return out
    return x + (1.0 - np.asarray(t))[:, None, None] * out


def euler_chain(sd, cfg, x0, obs):
    """x_{k+1} = x_k + v(x_k, k/K | s) / K; returns the chain (B, K+1, H, d)."""
    K = cfg.denoising_steps
    x = np.asarray(x0, np.float64)
    chain = [x]
    for k in range(K):
        t = np.full(x.shape[0], k / K)
        x = x + velocity(cfg, velocity_net(sd, cfg, x, t, obs), x, t) / K
        chain.append(x)
    return np.stack(chain, 1)


# ---------------------------------------------------------------------------
# Section 4: the actor losses
# ---------------------------------------------------------------------------


def actor_losses(sd, sd_ref, cfg, batch, phi, c_cons, kl_coef):
    """L_align, L_cons, L_ref of ALGORITHM.md section 4 for a drawn batch and a fixed field phi (N, H, d)."""
    K = cfg.denoising_steps
    k = np.asarray(batch["k"])
    t = k / K
    x_k = np.asarray(batch["x_k"], np.float64)
    a = np.asarray(batch["actions"], np.float64)
    obs = np.asarray(batch["obs"], np.float64)
    out = velocity_net(sd, cfg, x_k, t, obs)
    phi = np.asarray(phi, np.float64).reshape(out.shape)
    if cfg.prediction == "v_pred":
        w = K * (1.0 - t)
        align = -np.mean((out * phi).sum((1, 2)) / w)
        y = x_k + (1.0 - t)[:, None, None] * out
        cons = c_cons * np.mean(((y - a) ** 2).sum((1, 2)) / w ** 2)
    else:
        align = -np.mean((out * phi).sum((1, 2))) / K
        cons = c_cons * np.mean(((out - a) ** 2).sum((1, 2)))
    ref = 0.0
    if kl_coef > 0:
        tr = np.asarray(batch["ref_k"]) / K
        rx = np.asarray(batch["ref_x"], np.float64)
        cur = velocity_net(sd, cfg, rx, tr, obs)
        old = velocity_net(sd_ref, cfg, rx, tr, obs)
        ref = kl_coef * np.mean(((cur - old) ** 2).sum((1, 2)))
    return {"loss": align + cons + ref, "align": align, "cons": cons, "ref": ref}


# ---------------------------------------------------------------------------
# Section 2: the critic ensemble
# ---------------------------------------------------------------------------


def critic_q(sd, cfg, obs, chunk):
    """Q of every member, (M, N): MLP on [s, first act_steps steps of the chunk]."""
    n = obs.shape[0]
    c = np.asarray(chunk, np.float64)[:, : cfg.act_steps].reshape(n, -1)
    h = np.concatenate([np.asarray(obs, np.float64), c], -1)
    L = len([key for key in sd if key.startswith("w")])
    hs = np.broadcast_to(h, (cfg.ensemble_size,) + h.shape)
    for i in range(L):
        hs = hs @ np.asarray(sd[f"w{i}"], np.float64) + np.asarray(sd[f"b{i}"], np.float64)
        if i + 1 < L:
            hs = activation(cfg.activation, hs)
    return hs[..., 0]
