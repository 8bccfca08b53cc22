// Inference-only copy of a FlowPolicy's velocity network for deployment, low-latency acting and
// rollouts (issue 6): no LibTorch ops, no autograd, no allocation per call once its buffers have
// grown to the batch size.
//
// Work that does not change across the K Euler steps is done once: the time embedding of every
// t_k = k/K and its share of the first layer are precomputed at construction (K bias vectors), and
// the observation's share of the first layer is computed once per call. Each step then runs the
// x-part of the first layer (h × A), the hidden layers and the output layer.
//
// Matrix products (set_gemm): "packed" (the default) multiplies with weights stored once in
// PackedWeights' panel layout, on the calling thread: no per-call repacking of the weights, and
// every state's result independent of the batch it is in (so callers may split rows over threads
// and get the same bits). "blas" runs batches of 8 or more states through the loaded BLAS's GEMM,
// with its threads; "eigen" runs everything in Eigen on the calling thread.
//
// It works in the policy's own units, like FlowPolicy::act: a pretrained policy with a normaliser
// (FlowPolicy::normalizer(), the dataset's min/max) expects normalised observations and returns
// chunks in [−1, 1] that map onto the dataset's action range; apply the normaliser around it.
//
// Shapes: B states, O = obs_dim, H = horizon_steps, d = action_dim, A = H·d. Arrays are
// row-major float: obs [B·O], chunks [B·A] (state b's chunk at [b·A, (b+1)·A), step-major).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rldt/algo/flow_policy.hpp"
#include "rldt/util/blas_gemm.hpp"
#include "rldt/util/packed_gemm.hpp"
#include "rldt/util/thread_pool.hpp"

namespace rldt {

class InferencePolicy {
 public:
  // Copies the weights of `policy`'s trained actor (`net` = "actor") or of its EMA copy ("ema").
  explicit InferencePolicy(FlowPolicy& policy, const std::string& net = "actor");

  const FlowPolicyConfig& config() const { return cfg_; }
  // Copies the weights of the same net of `policy` (one of the same architecture) into this
  // snapshot's storage: no allocation, and the packed panels rewritten in place, so a snapshot
  // kept across training steps costs a copy per refresh, not a rebuild. Throws ArgumentError if
  // the architecture differs.
  void refresh(FlowPolicy& policy);

  // Euler sampling from x_0 = `x0` [B·A] (nullptr: x_0 = 0, the deterministic mode) for B states
  // obs [B·O]; writes the final chunks (clamped when final_action_clip > 0) to out [B·A].
  // Not thread-safe (scratch buffers are reused); use one instance per thread.
  void act(const float* obs, int64_t B, const float* x0, float* out);
  // One state, deterministic: obs [O] → chunk [A].
  std::vector<float> act(const std::vector<float>& obs);
  // act, also writing the chain x_0 … x_K (unclamped, as FlowPolicy::sample's FlowSample::chain)
  // to chain [B·(K+1)·A] (state b's at [b·(K+1)·A, (b+1)·(K+1)·A), step-major) when not null.
  void sample(const float* obs, int64_t B, const float* x0, float* out, float* chain);
  // Expected targets ŷ = x_k + (1 − t_k)·v(x_k, t_k | s) with t_k = k/K (x_pred: the network's x̂),
  // as FlowPolicy::expected_target, for B states each at its own step: x_k [B·A], k [B] in [0, K)
  // → out [B·A] (not clamped).
  void expected_target(const float* obs, int64_t B, const float* x_k, const int64_t* k, float* out);

  // The matrix products: "packed" (default), "blas" (falls back to Eigen where the process has no
  // BLAS sgemm_), or "eigen"; see the top of this file. Throws ArgumentError naming `gemm`.
  void set_gemm(const std::string& gemm);
  // The setting in effect ("blas" only when a BLAS GEMM was found).
  std::string gemm() const;
  // Whether a BLAS sgemm_ was found in the process (what "blas" needs).
  bool blas_available() const { return gemm_ != nullptr; }

  // Threads (default 1: the calling thread only). With n > 1 the work of a call is spread over n
  // threads of an internal pool (the caller's included), in one of two ways (set_split):
  //  - "rows": the batch is cut into up to n contiguous blocks of at least 8 states, each run
  //    with its own scratch buffers. Each thread then reads every weight matrix once per layer
  //    for its own few rows.
  //  - "columns" (packed only): every thread takes all the states and its share of each layer's
  //    output columns (whole panels), the last layer's rows and the per-state updates, and the
  //    threads wait for each other between layers. Each weight is read once per layer in all,
  //    for all the states: the faster split for small batches (measured in docs/benchmarks.md).
  //  - "auto" (default): "columns" for packed batches too small to give every thread a block of
  //    rows (fewer than 8 states per thread), "rows" otherwise (as fast as columns at 16 states
  //    on 2 threads, faster at 100: docs/benchmarks.md).
  // With "packed" the results are bit-identical to one thread's, either way. "blas" does not
  // split (its GEMM threads itself); "eigen" splits rows. Callers that already split rows over
  // their own threads keep 1.
  void set_threads(int n);
  int threads() const { return pool_ ? pool_->num_threads() : 1; }
  // Runs the threads of a call on `pool` (not owned: it must outlive its use here, and run
  // nothing else during a call) instead of an internal pool; threads() becomes its size. For
  // callers that alternate env stepping on a pool with inference (RldtTrainer's rollouts and
  // evaluation on VecEnv::thread_pool()): one set of threads does both, so no second pool's
  // threads spin (ThreadPool's spin_us) beside them. nullptr: back to the calling thread only
  // (set_threads(1)).
  void set_thread_pool(ThreadPool* pool);
  // "auto", "rows" or "columns" (see set_threads). Throws ArgumentError naming `split`.
  void set_split(const std::string& split);
  const std::string& split() const { return split_; }

 private:
  enum class Gemm { kPacked, kBlas, kEigen };
  struct Part;  // which share of a call one thread computes (inference_policy.cpp)
  struct Layer {
    int64_t in = 0, out = 0;
    std::vector<float> w;  // [out·in] row-major (torch's Linear layout)
    std::vector<float> b;  // [out]
    PackedWeights packed;  // w in PackedWeights' layout
  };
  void load(FlowPolicy& policy);
  // l's weights = w (out × in) and bias b (undefined: none), repacked in place when the shape is unchanged.
  static void set_layer(Layer& l, const torch::Tensor& w, const torch::Tensor& b);
  // Activations of one block of states, grown to the largest block seen: [h·B] ×4, [A·B].
  struct Scratch {
    std::vector<float> obs_proj, z, y, u, v;
  };
  void reserve(Scratch& s, int64_t B) const;
  // dst (l.out × B, column-major) = W(l) · src (l.in × B) (+ b(l) when the layer has one).
  void dense(const Layer& l, const float* src, float* dst, int64_t B) const;
  // dense for part p's output columns (all of them for a whole part).
  void dense_columns(const Layer& l, const float* src, float* dst, int64_t B, const Part& p) const;
  // dense for part p's rows (all of them for a whole part).
  void dense_rows(const Layer& l, const float* src, float* dst, int64_t B, const Part& p) const;
  // The network's raw output s.v [A·B] (part p's rows) at x [A·B] for states whose first-layer obs
  // share is in s.obs_proj, all at step `k`, or each at its own step ks[b] when ks is not null.
  void net_output(Scratch& s, const Part& p, const float* x, int64_t B, int64_t k, const int64_t* ks) const;
  void sample_part(Scratch& s, const Part& p, const float* obs, int64_t B, const float* x0, float* out,
                   float* chain) const;
  void target_part(Scratch& s, const Part& p, const float* obs, int64_t B, const float* x_k, const int64_t* k,
                   float* out) const;
  // fn(scratch, part, first row, rows) over the threads' shares of B states (see set_threads).
  template <class Fn>
  void split_work(int64_t B, Fn&& fn);

  FlowPolicyConfig cfg_;
  std::string net_name_;  // "actor" or "ema"
  int64_t hidden_ = 0;
  Layer in_x_;                        // first layer, x columns: [h × A] (no bias)
  Layer in_obs_;                      // first layer, obs columns: [h × O] (no bias)
  std::vector<float> step_bias_;      // [K·h]: first-layer bias + time-embedding share for t_k
  std::vector<Layer> hidden_layers_;  // residual: pairs per block; plain MLP: the chain
  Layer out_;                         // [A × h]
  SgemmFn gemm_ = nullptr;            // the loaded BLAS's sgemm_, if any
  Gemm mode_ = Gemm::kPacked;
  std::vector<Scratch> scratch_;          // one per row block (set_threads); a column split uses the first
  std::unique_ptr<ThreadPool> own_pool_;  // set_threads' pool (null with one thread or a pool set)
  ThreadPool* pool_ = nullptr;            // the pool the threads run on: own_pool_'s or set_thread_pool's
  std::string split_ = "auto";
};

}  // namespace rldt
