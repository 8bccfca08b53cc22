// Multi-layer perceptrons used by the actor and the critics.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <ATen/core/Generator.h>

#include <string>
#include <vector>

namespace rldt {

// Re-initialises every torch::nn::Linear inside `module` as PyTorch does by
// default (weights and biases ~ U(−1/√fan_in, 1/√fan_in)) but drawing from
// `gen`, so construction never touches torch's global generator.
void init_linear_layers(torch::nn::Module& module, at::Generator& gen);

// Activation by name: "relu", "silu", "mish", "tanh", "identity".
// Throws ArgumentError naming `what` for an unknown name.
torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x);
void check_activation(const std::string& name, const std::string& what);

// The hand-written backward of the networks below (the actor update's, issue 6), without autograd.
//   forward_saving: forward() with the same operations (the same values, bit for bit), appending to
//     `saved` the activations the backward reads; rows as in x. An entry is undefined where the
//     activation does not need it (relu and tanh read their output, silu and mish their input).
//   backward_saved: from those entries, starting at saved[offset] (any rows: e.g. the rows of several
//     passes concatenated entry by entry) and dL/d(output) (R, out), SETS every parameter's .grad to
//     dL/dθ summed over the rows (no accumulation) and returns dL/d(input) (R, in).
// g·act'(z) for y = act(z): relu and tanh read y, silu and mish read z (the other may be undefined).
torch::Tensor activation_backward(const std::string& name, const torch::Tensor& g, const torch::Tensor& z,
                                  const torch::Tensor& y);
// Whether activation_backward needs the activation's input z (silu, mish).
bool activation_reads_input(const std::string& name);
// weight.grad ← gᵀ·x (out, in), bias.grad ← Σ_rows g; g (R, out), x (R, in).
void set_linear_grads(torch::nn::LinearImpl& layer, const torch::Tensor& g, const torch::Tensor& x);

// Plain MLP: Linear→act for every hidden layer, then a Linear with no activation.
// dims = {in, h1, ..., out}.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(std::vector<int64_t> dims, std::string activation);
  // x: (N, in) → (N, out)
  torch::Tensor forward(torch::Tensor x);
  // The hand-written backward (above). Entries: the input of every layer, and before each hidden layer's
  // output the pre-activation (undefined unless activation_reads_input).
  torch::Tensor forward_saving(torch::Tensor x, std::vector<torch::Tensor>& saved);
  torch::Tensor backward_saved(const std::vector<torch::Tensor>& saved, size_t offset, const torch::Tensor& grad_out);
  const std::vector<int64_t>& dims() const { return dims_; }

 private:
  std::vector<int64_t> dims_;
  std::string activation_;
  torch::nn::ModuleList layers_;
};
TORCH_MODULE(MLP);

// Residual MLP with pre-activation blocks, the actor body of ALGORITHM.md §1.
// hidden = {h, h, ..., h} (an odd count n gives Linear(in→h), (n−1)/2 blocks
// y = x + L2(act(L1(act(x)))), then Linear(h→out) with no activation before it).
class ResidualMLPImpl : public torch::nn::Module {
 public:
  ResidualMLPImpl(int64_t in_dim, std::vector<int64_t> hidden, int64_t out_dim, std::string activation);
  // x: (N, in) → (N, out)
  torch::Tensor forward(torch::Tensor x);
  // The hand-written backward (above). Entries: the input; per block the residual stream before it
  // (undefined unless activation_reads_input), act of it, L1's output (same rule), act of that;
  // the stream after the last block.
  torch::Tensor forward_saving(torch::Tensor x, std::vector<torch::Tensor>& saved);
  torch::Tensor backward_saved(const std::vector<torch::Tensor>& saved, size_t offset, const torch::Tensor& grad_out);

 private:
  std::string activation_;
  torch::nn::Linear input_{nullptr}, output_{nullptr};
  torch::nn::ModuleList blocks_;  // pairs of Linear layers, stored flat: l1, l2, l1, l2, ...
};
TORCH_MODULE(ResidualMLP);

}  // namespace rldt
