// Small helpers over torch's archives: atomic writes and typed reads that fail
// with a message naming the file and the missing key.
#pragma once

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <torch/nn/module.h>

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

// An exception's message without LibTorch's C++ backtrace.
std::string error_message(const std::exception& e);

}  // namespace rldt
