#include "rldt/util/serialize.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace rldt {

namespace {
constexpr const char* kMagicKey = "rldt.kind";
}

std::string error_message(const std::exception& e) {
  if (auto* c10e = dynamic_cast<const c10::Error*>(&e)) return c10e->what_without_backtrace();
  return e.what();
}

void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& key,
                 const std::string& path) {
  torch::serialize::InputArchive sub;
  if (!archive.try_read(key, sub)) throw std::runtime_error("'" + path + "' lacks the network '" + key + "'");
  try {
    module.load(sub);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + path + "': network '" + key + "' does not match its config: " +
                             error_message(e).substr(0, 300));
  }
}

torch::serialize::InputArchive read_archive(torch::serialize::InputArchive& archive, const std::string& key,
                                            const std::string& path) {
  torch::serialize::InputArchive sub;
  if (!archive.try_read(key, sub)) throw std::runtime_error("'" + path + "' lacks the section '" + key + "'");
  return sub;
}

void write_archive(torch::serialize::OutputArchive& archive, const std::string& key,
                   torch::serialize::OutputArchive& value) {
  archive.write(key, value);
}

void save_optimizer(const torch::optim::Optimizer& optimizer, torch::serialize::OutputArchive& archive,
                    const std::string& key) {
  torch::serialize::OutputArchive sub;
  optimizer.save(sub);
  archive.write(key, sub);
}

void load_optimizer(torch::optim::Optimizer& optimizer, torch::serialize::InputArchive& archive, const std::string& key,
                    const std::string& path) {
  auto sub = read_archive(archive, key, path);
  optimizer.state().clear();  // parameters without saved state (no step yet) start fresh
  try {
    optimizer.load(sub);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + path + "': optimizer state '" + key +
                             "' does not fit the optimizer: " + error_message(e).substr(0, 300));
  }
}

void write_header(torch::serialize::OutputArchive& archive, const std::string& kind) {
  archive.write(kMagicKey, c10::IValue(kind));
}

void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path() && !fs::exists(target.parent_path()))
    throw std::runtime_error("cannot save '" + path + "': folder '" + target.parent_path().string() +
                             "' does not exist");
  const std::string tmp = path + ".tmp";
  try {
    archive.save_to(tmp);
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write '" + tmp + "': " + e.what());
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

void load_archive(torch::serialize::InputArchive& archive, const std::string& path, const std::string& kind) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("file '" + path + "' does not exist");
  try {
    archive.load_from(path);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + path + "' is not a readable rldt file (truncated or foreign): " +
                             error_message(e).substr(0, 200));
  }
  c10::IValue v;
  if (!archive.try_read(kMagicKey, v) || !v.isString())
    throw std::runtime_error("'" + path + "' is not an rldt file (no '" + kMagicKey + "' entry)");
  if (v.toStringRef() != kind)
    throw std::runtime_error("'" + path + "' holds a '" + v.toStringRef() + "', expected a '" + kind + "'");
}

c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!archive.try_read(key, v)) throw std::runtime_error("'" + path + "' lacks the entry '" + key + "'");
  return v;
}

}  // namespace rldt
