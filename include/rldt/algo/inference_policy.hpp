// Inference-only copy of a FlowPolicy's velocity network for deployment and low-latency acting
// (issue 6): no LibTorch ops, no autograd, no allocation per call once its buffers have grown to
// the batch size. One state runs in Eigen on the calling thread; batches run the hidden layers
// through the loaded BLAS's GEMM (see set_use_blas).
//
// Work that does not change across the K Euler steps is done once: the time embedding of every
// t_k = k/K and its share of the first layer are precomputed at construction (K bias vectors), and
// the observation's share of the first layer is computed once per call. Each step then runs the
// x-part of the first layer (h × A), the hidden layers and the output layer.
//
// It works in the policy's own units, like FlowPolicy::act: a pretrained policy with a normaliser
// (FlowPolicy::normalizer(), the dataset's min/max) expects normalised observations and returns
// chunks in [−1, 1] that map onto the dataset's action range; apply the normaliser around it.
//
// Shapes: B states, O = obs_dim, H = horizon_steps, d = action_dim, A = H·d. Arrays are
// row-major float: obs [B·O], chunks [B·A] (state b's chunk at [b·A, (b+1)·A), step-major).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rldt/algo/flow_policy.hpp"
#include "rldt/util/blas_gemm.hpp"

namespace rldt {

class InferencePolicy {
 public:
  // Copies the weights of `policy`'s trained actor (`net` = "actor") or of its EMA copy ("ema").
  explicit InferencePolicy(FlowPolicy& policy, const std::string& net = "actor");

  const FlowPolicyConfig& config() const { return cfg_; }

  // Euler sampling from x_0 = `x0` [B·A] (nullptr: x_0 = 0, the deterministic mode) for B states
  // obs [B·O]; writes the final chunks (clamped when final_action_clip > 0) to out [B·A].
  // Not thread-safe (scratch buffers are reused); use one instance per thread.
  void act(const float* obs, int64_t B, const float* x0, float* out);
  // One state, deterministic: obs [O] → chunk [A].
  std::vector<float> act(const std::vector<float>& obs);

  // Batches of 8 or more states run the hidden layers through the process's BLAS GEMM (OpenBLAS,
  // with its own threads) when one is loaded; off, everything runs in Eigen on the calling thread.
  void set_use_blas(bool on) { use_blas_ = on; }
  // Whether batches use the BLAS GEMM: found in the process and not switched off.
  bool uses_blas() const { return gemm_ != nullptr && use_blas_; }

 private:
  struct Layer {
    int64_t in = 0, out = 0;
    std::vector<float> w;  // [out·in] row-major (torch's Linear layout)
    std::vector<float> b;  // [out]
  };
  FlowPolicyConfig cfg_;
  int64_t hidden_ = 0;
  Layer in_x_;                        // first layer, x columns: [h × A] (no bias)
  Layer in_obs_;                      // first layer, obs columns: [h × O] (no bias)
  std::vector<float> step_bias_;      // [K·h]: first-layer bias + time-embedding share for t_k
  std::vector<Layer> hidden_layers_;  // residual: pairs per block; plain MLP: the chain
  Layer out_;                         // [A × h]
  SgemmFn gemm_ = nullptr;            // the loaded BLAS's sgemm_, if any
  bool use_blas_ = true;
  // Scratch, grown to the largest batch seen: [h·B] ×4, [A·B].
  std::vector<float> obs_proj_, z_, y_, u_, v_;
};

}  // namespace rldt
