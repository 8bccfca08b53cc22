// Private helpers of the env layer: a byte blob written and read field by field, for the
// snapshot()/restore() state of MujocoEnv and VecEnv. Values are stored in the machine's
// representation (a snapshot is restored on the build that wrote it, not across platforms).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "rldt/envs/env.hpp"

namespace rldt::detail {

class BlobWriter {
 public:
  template <typename T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable<T>::value, "pod() needs a trivially copyable type");
    bytes(&v, sizeof(T));
  }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void string(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  // Length-prefixed array of n elements of T.
  template <typename T>
  void array(const T* p, size_t n) {
    static_assert(std::is_trivially_copyable<T>::value, "array() needs a trivially copyable type");
    pod<uint64_t>(n * sizeof(T));
    bytes(p, n * sizeof(T));
  }
  template <typename T>
  void vector(const std::vector<T>& v) {
    array(v.data(), v.size());
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

// Reads what BlobWriter wrote; every mismatch throws EnvError starting with `who`.
class BlobReader {
 public:
  BlobReader(const std::vector<uint8_t>& blob, std::string who) : blob_(blob), who_(std::move(who)) {}
  template <typename T>
  T pod(const char* what) {
    T v;
    bytes(&v, sizeof(T), what);
    return v;
  }
  void bytes(void* p, size_t n, const char* what) {
    if (n > blob_.size() - pos_)
      throw EnvError(who_ + ": state blob is truncated (reading '" + what + "' at byte " + std::to_string(pos_) +
                     " of " + std::to_string(blob_.size()) + ")");
    std::memcpy(p, blob_.data() + pos_, n);
    pos_ += n;
  }
  std::string string(const char* what) {
    const auto n = pod<uint64_t>(what);
    if (n > blob_.size() - pos_) bytes(nullptr, n, what);  // throws
    std::string s(reinterpret_cast<const char*>(blob_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // Reads an array written by BlobWriter::array into p [n]; its size must be n elements.
  template <typename T>
  void array(T* p, size_t n, const char* what) {
    const auto got = pod<uint64_t>(what);
    if (got != n * sizeof(T))
      throw EnvError(who_ + ": state blob field '" + what + "' has " + std::to_string(got) + " bytes; expected " +
                     std::to_string(n * sizeof(T)) + " (a state of another task or model?)");
    bytes(p, got, what);
  }
  template <typename T>
  void vector(std::vector<T>& v, const char* what) {
    array(v.data(), v.size(), what);
  }
  // Throws unless every byte was read.
  void finish() const {
    if (pos_ != blob_.size())
      throw EnvError(who_ + ": state blob has " + std::to_string(blob_.size() - pos_) + " unread trailing bytes");
  }

 private:
  const std::vector<uint8_t>& blob_;
  std::string who_;
  size_t pos_ = 0;
};

}  // namespace rldt::detail
