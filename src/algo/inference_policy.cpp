#include "rldt/algo/inference_policy.hpp"

#include <torch/torch.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "rldt/nn/time_embedding.hpp"
#include "rldt/util/blas_gemm.hpp"
#include "rldt/util/check.hpp"

namespace rldt {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

// dst = the values of t (float, row-major), reusing dst's storage.
void assign(std::vector<float>& dst, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat).contiguous();
  dst.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Applies the activation in place to n values with Eigen's vectorised functions (silu through the
// logistic function, mish with one exp: 2.4x and 3.4x faster than the exp-based forms in a
// standalone loop here, within 2e-6 of them). The values go through an aligned buffer in blocks
// padded to whole packets, so every value takes the packet path whatever its address and
// neighbours: a value's result is the same whether a column split activates a row's share or one
// thread the whole batch (Eigen's scalar path for unaligned heads and tails rounds differently).
void activate(const std::string& act, float* x, int64_t n) {
  if (act == "relu") {  // exact in any path
    Eigen::Map<Eigen::ArrayXf> a(x, n);
    a = a.max(0.f);
    return;
  }
  if (act != "silu" && act != "mish" && act != "tanh") return;  // identity
  constexpr int64_t kBlock = 256;
  alignas(64) float buf[kBlock], tmp[kBlock];
  for (int64_t i = 0; i < n; i += kBlock) {
    const int64_t m = std::min(kBlock, n - i), padded = (m + 15) / 16 * 16;
    std::copy(x + i, x + i + m, buf);
    std::fill(buf + m, buf + padded, 0.f);
    Eigen::Map<Eigen::ArrayXf, Eigen::Aligned64> a(buf, padded);
    if (act == "silu") {
      a = a * a.logistic();
    } else if (act == "mish") {
      // tanh(softplus(x)) = p / (p + 2) with p = e^x (e^x + 2); x clamped at 20, where it is 1 in float.
      Eigen::Map<Eigen::ArrayXf, Eigen::Aligned64> p(tmp, padded);
      p = a.min(20.f).exp();
      p *= p + 2.f;
      a = a * p / (p + 2.f);
    } else {
      a = a.tanh();
    }
    std::copy(buf, buf + m, x + i);
  }
}

// activate on columns [c0, c1) of each of B rows of width w (row-major).
void activate_columns(const std::string& act, float* x, int64_t w, int64_t B, int64_t c0, int64_t c1) {
  if (c0 == 0 && c1 == w) {
    activate(act, x, w * B);
    return;
  }
  for (int64_t b = 0; b < B; ++b) activate(act, x + b * w + c0, c1 - c0);
}

// Batches from this size on go through the BLAS GEMM (below it Eigen's product is as fast and
// starts no BLAS threads).
constexpr int64_t kBlasMinBatch = 8;
// set_threads: a batch is split only into blocks of at least this many states.
constexpr int64_t kMinThreadRows = 8;

}  // namespace

// Thread t of T's share: output columns cols(w) of every layer of width w but the last (whole
// panels, so each thread's columns come out as one thread's would), rows rows(B) of the last layer
// and of the per-state updates, and sync() where a thread goes on to read what the others wrote.
// The whole part (T = 1) is all of it, with no waiting.
struct InferencePolicy::Part {
  int t = 0, T = 1;
  SpinBarrier* barrier = nullptr;
  bool whole() const { return T == 1; }
  std::pair<int64_t, int64_t> cols(int64_t w) const {
    const int64_t P = PackedWeights::kPanelWidth, panels = (w + P - 1) / P;
    return {std::min(w, t * panels / T * P), std::min(w, (t + 1) * panels / T * P)};
  }
  std::pair<int64_t, int64_t> rows(int64_t B) const { return {t * B / T, (t + 1) * B / T}; }
  void sync() const {
    if (barrier) barrier->wait();
  }
};

InferencePolicy::InferencePolicy(FlowPolicy& policy, const std::string& net_name)
    : cfg_(policy.config()), gemm_(blas_sgemm()), scratch_(1) {
  check_choice(net_name, "net", {"actor", "ema"});
  net_name_ = net_name;
  load(policy);
}

void InferencePolicy::refresh(FlowPolicy& policy) {
  const auto& c = policy.config();
  check_arg(c.same_architecture(cfg_),
            "InferencePolicy::refresh: the policy's architecture differs from the one this snapshot was built from");
  cfg_ = c;  // (sampling settings such as final_action_clip follow the policy)
  load(policy);
}

void InferencePolicy::load(FlowPolicy& policy) {
  VelocityNet& net = net_name_ == "ema" ? policy.ema() : policy.actor();
  torch::NoGradGuard ng;
  const auto params = net->named_parameters(/*recurse=*/true);
  auto param = [&](const std::string& name) {
    const auto* p = params.find(name);
    check_arg(p != nullptr, "InferencePolicy: the velocity network has no parameter '", name, "'");
    return p->detach().to(torch::kFloat).contiguous();
  };
  const int64_t A = cfg_.action_size(), T = cfg_.time_dim, O = cfg_.obs_dim, K = cfg_.denoising_steps;
  // First layer and the body.
  torch::Tensor w_in, b_in;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> hidden;
  torch::Tensor w_out, b_out;
  if (cfg_.residual) {
    w_in = param("body.input.weight");
    b_in = param("body.input.bias");
    for (size_t i = 0; i + 1 < cfg_.mlp_dims.size(); ++i)
      hidden.emplace_back(param("body.blocks." + std::to_string(i) + ".weight"),
                          param("body.blocks." + std::to_string(i) + ".bias"));
    w_out = param("body.output.weight");
    b_out = param("body.output.bias");
  } else {
    const size_t n = cfg_.mlp_dims.size() + 1;  // linear layers
    w_in = param("body.layers.0.weight");
    b_in = param("body.layers.0.bias");
    for (size_t i = 1; i + 1 < n; ++i)
      hidden.emplace_back(param("body.layers." + std::to_string(i) + ".weight"),
                          param("body.layers." + std::to_string(i) + ".bias"));
    w_out = param("body.layers." + std::to_string(n - 1) + ".weight");
    b_out = param("body.layers." + std::to_string(n - 1) + ".bias");
  }
  hidden_ = w_in.size(0);
  check_arg(w_in.size(1) == A + T + O, "InferencePolicy: first layer has ", w_in.size(1), " inputs, expected ",
            A + T + O);
  // Input order of the network: [x (A), time embedding (T), obs (O)].
  set_layer(in_x_, w_in.narrow(1, 0, A).contiguous(), torch::Tensor());
  set_layer(in_obs_, w_in.narrow(1, A + T, O).contiguous(), torch::Tensor());
  // Time embedding of every t_k and its share of the first layer, with the first-layer bias.
  auto t = torch::arange(K, torch::kFloat) / static_cast<double>(K);
  auto emb = sinusoidal_embedding(t, T);
  emb = torch::linear(emb, param("time.fc1.weight"), param("time.fc1.bias"));
  emb = torch::mish(emb);
  emb = torch::linear(emb, param("time.fc2.weight"), param("time.fc2.bias"));  // (K, T)
  assign(step_bias_, torch::linear(emb, w_in.narrow(1, A, T), b_in));          // (K, h)
  hidden_layers_.resize(hidden.size());
  for (size_t i = 0; i < hidden.size(); ++i) set_layer(hidden_layers_[i], hidden[i].first, hidden[i].second);
  set_layer(out_, w_out, b_out);
  check_arg(out_.out == A, "InferencePolicy: output layer has ", out_.out, " outputs, expected ", A);
}

void InferencePolicy::set_layer(Layer& l, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t out = w.size(0), in = w.size(1);
  assign(l.w, w);
  if (b.defined()) {
    assign(l.b, b);
  } else {
    l.b.clear();
  }
  if (l.in == in && l.out == out && !l.packed.empty()) {
    l.packed.repack(l.w.data());  // the same shape: into the panels it already has
  } else {
    l.in = in;
    l.out = out;
    l.packed = PackedWeights(l.w.data(), out, in);
  }
}

void InferencePolicy::set_gemm(const std::string& gemm) {
  check_choice(gemm, "gemm", {"packed", "blas", "eigen"});
  mode_ = gemm == "packed" ? Gemm::kPacked : gemm == "blas" ? Gemm::kBlas : Gemm::kEigen;
}

std::string InferencePolicy::gemm() const {
  if (mode_ == Gemm::kPacked) return "packed";
  return mode_ == Gemm::kBlas && gemm_ ? "blas" : "eigen";
}

void InferencePolicy::reserve(Scratch& s, int64_t B) const {
  int64_t widest = hidden_;
  for (const auto& l : hidden_layers_) widest = std::max(widest, l.out);
  if (static_cast<int64_t>(s.z.size()) < widest * B) {
    s.obs_proj.resize(hidden_ * B);
    s.z.resize(widest * B);
    s.y.resize(widest * B);
    s.u.resize(widest * B);
    s.v.resize(cfg_.action_size() * B);
  }
}

void InferencePolicy::set_threads(int n) {
  check_arg(n >= 1, "InferencePolicy::set_threads: n must be >= 1, got ", n);
  if (n == threads() && pool_ == own_pool_.get()) return;  // (keeps the pool)
  own_pool_ = n > 1 ? std::make_unique<ThreadPool>(n) : nullptr;
  pool_ = own_pool_.get();
  scratch_.resize(static_cast<size_t>(n));
}

void InferencePolicy::set_thread_pool(ThreadPool* pool) {
  if (!pool) {
    set_threads(1);
    return;
  }
  own_pool_.reset();
  pool_ = pool->num_threads() > 1 ? pool : nullptr;
  scratch_.resize(static_cast<size_t>(pool->num_threads()));
}

void InferencePolicy::set_split(const std::string& split) {
  check_choice(split, "split", {"auto", "rows", "columns"});
  split_ = split;
}

template <class Fn>
void InferencePolicy::split_work(int64_t B, Fn&& fn) {
  const int T = threads();
  const bool columns =
      T > 1 && mode_ == Gemm::kPacked && (split_ == "columns" || (split_ == "auto" && B < kMinThreadRows * T));
  if (columns) {  // all threads on all the states, one scratch
    Scratch& s = scratch_[0];
    reserve(s, B);
    SpinBarrier barrier(T);
    pool_->run_team([&](int t) { fn(s, Part{t, T, &barrier}, int64_t{0}, B); });
    return;
  }
  // Blocks of at least kMinThreadRows states, at most one per thread ("blas" threads itself).
  const int64_t blocks = T > 1 && mode_ != Gemm::kBlas ? std::min<int64_t>(T, B / kMinThreadRows) : 1;
  if (blocks <= 1) {
    reserve(scratch_[0], B);
    fn(scratch_[0], Part{}, int64_t{0}, B);
    return;
  }
  pool_->parallel_for(static_cast<int>(blocks), [&](int i) {
    const int64_t lo = i * B / blocks, hi = (i + 1) * B / blocks;
    Scratch& s = scratch_[static_cast<size_t>(i)];
    reserve(s, hi - lo);
    fn(s, Part{}, lo, hi - lo);
  });
}

void InferencePolicy::dense(const Layer& l, const float* src, float* dst, int64_t B) const {
  const float* bias = l.b.empty() ? nullptr : l.b.data();
  if (mode_ == Gemm::kPacked) {
    // Column-major (features × B) is row-major (B × features): B rows of l.in in, l.out out.
    l.packed.multiply(src, B, l.in, dst, l.out, bias);
    return;
  }
  Eigen::Map<ColMat> d(dst, l.out, B);
  if (bias) {
    d.colwise() = Eigen::Map<const Eigen::VectorXf>(bias, l.out);
  } else {
    d.setZero();
  }
  if (mode_ == Gemm::kBlas && gemm_ != nullptr && B >= kBlasMinBatch) {
    // Torch's (out × in) row-major weight is the column-major (in × out) matrix: op = T.
    const int m = static_cast<int>(l.out), n = static_cast<int>(B), k = static_cast<int>(l.in);
    const float one = 1.f;
    gemm_("T", "N", &m, &n, &k, &one, l.w.data(), &k, src, &k, &one, dst, &m, 1, 1);
  } else {
    d.noalias() += Eigen::Map<const RowMat>(l.w.data(), l.out, l.in) * Eigen::Map<const ColMat>(src, l.in, B);
  }
}

void InferencePolicy::dense_columns(const Layer& l, const float* src, float* dst, int64_t B, const Part& p) const {
  if (p.whole()) {
    dense(l, src, dst, B);
    return;
  }
  const auto [c0, c1] = p.cols(l.out);
  if (c0 < c1) l.packed.multiply_columns(src, B, l.in, dst, l.out, c0, c1, l.b.empty() ? nullptr : l.b.data());
}

void InferencePolicy::dense_rows(const Layer& l, const float* src, float* dst, int64_t B, const Part& p) const {
  if (p.whole()) {
    dense(l, src, dst, B);
    return;
  }
  const auto [r0, r1] = p.rows(B);
  if (r0 < r1)
    l.packed.multiply(src + r0 * l.in, r1 - r0, l.in, dst + r0 * l.out, l.out, l.b.empty() ? nullptr : l.b.data());
}

void InferencePolicy::net_output(Scratch& s, const Part& p, const float* x, int64_t B, int64_t k,
                                 const int64_t* ks) const {
  const int64_t h = hidden_;
  const std::string& act = cfg_.activation;
  const auto [c0, c1] = p.cols(h);
  const int64_t nc = c1 - c0;
  // z = first layer: its x share, + its obs share, + (bias + time share) of the state's step.
  dense_columns(in_x_, x, s.z.data(), B, p);
  for (int64_t b = 0; b < B; ++b) {
    Eigen::Map<Eigen::ArrayXf> z(s.z.data() + b * h + c0, nc);
    z += Eigen::Map<const Eigen::ArrayXf>(s.obs_proj.data() + b * h + c0, nc);
    z += Eigen::Map<const Eigen::ArrayXf>(step_bias_.data() + (ks ? ks[b] : k) * h + c0, nc);
  }
  const float* last = s.z.data();  // the last hidden layer's output
  if (cfg_.residual) {
    for (size_t i = 0; i + 1 < hidden_layers_.size(); i += 2) {
      // z += W2 act(W1 act(z) + b1) + b2
      for (int64_t b = 0; b < B; ++b)
        std::copy(s.z.data() + b * h + c0, s.z.data() + b * h + c1, s.y.data() + b * h + c0);
      activate_columns(act, s.y.data(), h, B, c0, c1);
      p.sync();
      dense_columns(hidden_layers_[i], s.y.data(), s.u.data(), B, p);
      activate_columns(act, s.u.data(), h, B, c0, c1);
      p.sync();
      dense_columns(hidden_layers_[i + 1], s.u.data(), s.y.data(), B, p);
      for (int64_t b = 0; b < B; ++b)
        Eigen::Map<Eigen::ArrayXf>(s.z.data() + b * h + c0, nc) +=
            Eigen::Map<const Eigen::ArrayXf>(s.y.data() + b * h + c0, nc);
    }
  } else {
    // Each layer's output activated (the first layer's included), then the next layer.
    activate_columns(act, s.z.data(), h, B, c0, c1);
    float* cur = s.z.data();
    float* nxt = s.y.data();
    for (const auto& l : hidden_layers_) {
      p.sync();
      dense_columns(l, cur, nxt, B, p);
      const auto [d0, d1] = p.cols(l.out);
      activate_columns(act, nxt, l.out, B, d0, d1);
      std::swap(cur, nxt);
    }
    last = cur;
  }
  p.sync();
  dense_rows(out_, last, s.v.data(), B, p);
}

void InferencePolicy::act(const float* obs, int64_t B, const float* x0, float* out) {
  sample(obs, B, x0, out, nullptr);
}

void InferencePolicy::sample(const float* obs, int64_t B, const float* x0, float* out, float* chain) {
  check_arg(B >= 1, "InferencePolicy::act: B must be >= 1, got ", B);
  const int64_t A = cfg_.action_size(), O = cfg_.obs_dim, K = cfg_.denoising_steps;
  split_work(B, [&](Scratch& s, const Part& p, int64_t lo, int64_t n) {
    sample_part(s, p, obs + lo * O, n, x0 ? x0 + lo * A : nullptr, out + lo * A,
                chain ? chain + lo * (K + 1) * A : nullptr);
  });
}

void InferencePolicy::sample_part(Scratch& s, const Part& p, const float* obs, int64_t B, const float* x0, float* out,
                                  float* chain) const {
  const int64_t A = cfg_.action_size(), K = cfg_.denoising_steps;
  const auto [r0, r1] = p.rows(B);
  const int64_t n = r1 - r0;
  // The chain runs in the output buffer; this part updates rows [r0, r1) of it.
  Eigen::Map<ColMat> x(out + r0 * A, A, n), v(s.v.data() + r0 * A, A, n);
  if (x0) {
    x = Eigen::Map<const ColMat>(x0 + r0 * A, A, n);
  } else {
    x.setZero();
  }
  dense_columns(in_obs_, obs, s.obs_proj.data(), B, p);
  // chain: (B, K+1, A) row-major, i.e. column b·(K+1) + k of an (A × B·(K+1)) column-major matrix.
  auto record = [&](int64_t k) {
    if (!chain) return;
    for (int64_t b = r0; b < r1; ++b) std::copy(out + b * A, out + (b + 1) * A, chain + (b * (K + 1) + k) * A);
  };
  record(0);
  const bool xpred = cfg_.prediction == "x_pred";
  for (int64_t k = 0; k < K; ++k) {
    p.sync();  // every row of x_k written before the first layer reads them
    const float t = static_cast<float>(k) / static_cast<float>(K);
    net_output(s, p, out, B, k, nullptr);
    if (xpred) v = (v - x) / (1.f - t);  // x̂ → velocity
    x += v / static_cast<float>(K);
    record(k + 1);
  }
  if (cfg_.final_action_clip > 0) {
    const float c = static_cast<float>(cfg_.final_action_clip);
    x = x.cwiseMax(-c).cwiseMin(c);
  }
}

void InferencePolicy::expected_target(const float* obs, int64_t B, const float* x_k, const int64_t* k, float* out) {
  check_arg(B >= 1, "InferencePolicy::expected_target: B must be >= 1, got ", B);
  const int64_t A = cfg_.action_size(), O = cfg_.obs_dim, K = cfg_.denoising_steps;
  for (int64_t b = 0; b < B; ++b)
    check_arg(k[b] >= 0 && k[b] < K, "InferencePolicy::expected_target: argument 'k' must hold steps in [0, ", K,
              "); row ", b, " has ", k[b]);
  split_work(B, [&](Scratch& s, const Part& p, int64_t lo, int64_t n) {
    target_part(s, p, obs + lo * O, n, x_k + lo * A, k + lo, out + lo * A);
  });
}

void InferencePolicy::target_part(Scratch& s, const Part& p, const float* obs, int64_t B, const float* x_k,
                                  const int64_t* k, float* out) const {
  const int64_t A = cfg_.action_size(), K = cfg_.denoising_steps;
  dense_columns(in_obs_, obs, s.obs_proj.data(), B, p);
  net_output(s, p, x_k, B, 0, k);
  const auto [r0, r1] = p.rows(B);
  Eigen::Map<ColMat> y(out + r0 * A, A, r1 - r0);
  Eigen::Map<const ColMat> v(s.v.data() + r0 * A, A, r1 - r0), x(x_k + r0 * A, A, r1 - r0);
  if (cfg_.prediction == "x_pred") {
    y = v;
    return;
  }
  for (int64_t b = r0; b < r1; ++b) {
    const float t = static_cast<float>(k[b]) / static_cast<float>(K);
    y.col(b - r0) = x.col(b - r0) + (1.f - t) * v.col(b - r0);
  }
}

std::vector<float> InferencePolicy::act(const std::vector<float>& obs) {
  check_arg(static_cast<int64_t>(obs.size()) == cfg_.obs_dim, "InferencePolicy::act: obs has ", obs.size(),
            " entries, expected obs_dim = ", cfg_.obs_dim);
  std::vector<float> out(static_cast<size_t>(cfg_.action_size()));
  act(obs.data(), 1, nullptr, out.data());
  return out;
}

}  // namespace rldt
