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

// Plain MLP: Linear→act for every hidden layer, then a Linear with no activation.
// dims = {in, h1, ..., out}.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(std::vector<int64_t> dims, std::string activation);
  // x: (N, in) → (N, out)
  torch::Tensor forward(torch::Tensor x);
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

 private:
  std::string activation_;
  torch::nn::Linear input_{nullptr}, output_{nullptr};
  torch::nn::ModuleList blocks_;  // pairs of Linear layers, stored flat: l1, l2, l1, l2, ...
};
TORCH_MODULE(ResidualMLP);

}  // namespace rldt
