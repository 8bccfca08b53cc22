#include "rldt/algo/td_targets.hpp"

#include <torch/torch.h>

#include "rldt/util/check.hpp"

namespace rldt {

namespace {
struct Masks {
  torch::Tensor r, v, term, done;  // float (T, N); done = term | trunc
};

Masks prepare(const torch::Tensor& rewards, const torch::Tensor& next_values, const torch::Tensor& terminated,
              const torch::Tensor& truncated, double gamma, bool bootstrap_truncated) {
  check_tensor(rewards, "rewards", {-1, -1});
  const int64_t N = rewards.size(0), T = rewards.size(1);
  check_tensor(next_values, "next_values", {N, T});
  auto as_mask = [&](const torch::Tensor& m, const char* name) {
    check_arg(m.defined() && m.dim() == 2 && m.size(0) == N && m.size(1) == T, "argument '", name, "' has shape ",
              m.defined() ? shape_to_string(m.sizes()) : "undefined", "; expected (", N, ", ", T, ")");
    auto f = m.to(torch::kFloat32);
    check_arg(((f == 0) | (f == 1)).all().item<bool>(), "argument '", name, "' must hold only 0/1 values");
    return f;
  };
  check_arg(gamma >= 0.0 && gamma <= 1.0, "gamma must be in [0, 1], got ", gamma);
  check_finite(rewards, "rewards");
  check_finite(next_values, "next_values");
  // The recursions walk over time: keep every array as contiguous (T, N) rows.
  auto tn = [](const torch::Tensor& x) { return x.t().contiguous(); };
  Masks m;
  m.r = tn(rewards);
  m.v = tn(next_values);
  auto term = tn(as_mask(terminated, "terminated"));
  auto trunc = tn(as_mask(truncated, "truncated"));
  m.term = bootstrap_truncated ? term : torch::clamp_max(term + trunc, 1.0);
  m.done = torch::clamp_max(term + trunc, 1.0);
  return m;
}
}  // namespace

torch::Tensor td_lambda_targets(const torch::Tensor& rewards, const torch::Tensor& next_values,
                                const torch::Tensor& terminated, const torch::Tensor& truncated, double gamma,
                                double lambda, bool bootstrap_truncated) {
  check_arg(lambda >= 0.0 && lambda <= 1.0, "td_lambda must be in [0, 1], got ", lambda);
  auto m = prepare(rewards, next_values, terminated, truncated, gamma, bootstrap_truncated);
  torch::NoGradGuard ng;
  const int64_t T = rewards.size(1);
  auto G = torch::empty_like(m.r);  // (T, N)
  torch::Tensor next_G;
  for (int64_t t = T - 1; t >= 0; --t) {
    auto r = m.r[t], v = m.v[t], cont = 1.0 - m.term[t];
    torch::Tensor g;
    if (t == T - 1) {
      g = r + gamma * cont * v;
    } else {
      // λ-mixing only while the episode goes on; at an episode end (truncation
      // with bootstrap) the target is the one-step bootstrap.
      auto lam = lambda * (1.0 - m.done[t]);
      g = r + gamma * cont * ((1.0 - lam) * v + lam * next_G);
    }
    G[t].copy_(g);
    next_G = g;
  }
  return G.t().contiguous();
}

torch::Tensor nstep_targets(const torch::Tensor& rewards, const torch::Tensor& next_values,
                            const torch::Tensor& terminated, const torch::Tensor& truncated, double gamma, int64_t n,
                            bool bootstrap_truncated) {
  check_arg(n >= 1, "n (n-step) must be >= 1, got ", n);
  auto m = prepare(rewards, next_values, terminated, truncated, gamma, bootstrap_truncated);
  torch::NoGradGuard ng;
  const int64_t N = rewards.size(0), T = rewards.size(1);
  auto G = torch::empty_like(m.r);  // (T, N)
  for (int64_t t = 0; t < T; ++t) {
    auto ret = torch::zeros({N});
    auto alive = torch::ones({N});  // 1 while the window is still open
    double disc = 1.0;
    for (int64_t i = 0; i < n && t + i < T; ++i) {
      const int64_t u = t + i;
      ret += alive * disc * m.r[u];
      const bool last = (i == n - 1) || (u == T - 1);
      // Bootstrap at the window's last step, or where the episode ends inside it.
      auto stop_here = last ? alive : alive * m.done[u];
      ret += stop_here * disc * gamma * (1.0 - m.term[u]) * m.v[u];
      alive = alive * (1.0 - m.done[u]);
      disc *= gamma;
    }
    G[t].copy_(ret);
  }
  return G.t().contiguous();
}

}  // namespace rldt
