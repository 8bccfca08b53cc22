// Small helpers over torch's archives: atomic writes and typed reads that fail
// with a message naming the file and the missing key.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <exception>
#include <string>

namespace rldt {

// Writes `archive` to `path` through a temporary file in the same folder and a
// rename, so a crash mid-write never leaves a truncated file at `path`.
void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::string& path);

// Loads `path`, checking it is an rldt file of `kind` (written by
// write_header). Throws std::runtime_error naming the file otherwise.
void load_archive(torch::serialize::InputArchive& archive, const std::string& path, const std::string& kind);
void write_header(torch::serialize::OutputArchive& archive, const std::string& kind);

// Reads `key` from `archive`; throws naming `path` and `key` if absent.
c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key, const std::string& path);

// Loads `module`'s parameters from the sub-archive `key`; errors name the file and key.
void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& key,
                 const std::string& path);

// Sub-archive `key` of `archive`; throws naming `path` and `key` if absent.
torch::serialize::InputArchive read_archive(torch::serialize::InputArchive& archive, const std::string& key,
                                            const std::string& path);
// Writes `value` as the sub-archive `key` (for the save_state methods of the components).
void write_archive(torch::serialize::OutputArchive& archive, const std::string& key,
                   torch::serialize::OutputArchive& value);

// An optimizer's per-parameter state (Adam/AdamW: step, exp_avg, exp_avg_sq) as the sub-archive
// `key`, and its restore into an optimizer over parameters of the same shapes, in the same order
// (the state is matched by position). Errors name the file and key.
void save_optimizer(const torch::optim::Optimizer& optimizer, torch::serialize::OutputArchive& archive,
                    const std::string& key);
void load_optimizer(torch::optim::Optimizer& optimizer, torch::serialize::InputArchive& archive, const std::string& key,
                    const std::string& path);

// An exception's message without LibTorch's C++ backtrace.
std::string error_message(const std::exception& e);

}  // namespace rldt
