#include "rldt/envs/wrappers.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace rldt {
namespace {

constexpr const char* kMinMaxTag = "rldt-minmax-v1";
constexpr const char* kMeanStdTag = "rldt-running-mean-std-v1";

void write_vector(std::ostream& os, const char* name, const std::vector<double>& v) {
  os << name;
  for (double x : v) os << ' ' << x;
  os << '\n';
}

std::vector<double> read_vector(std::istream& is, const char* name, size_t dim, const std::string& path) {
  std::string key;
  std::vector<double> v(dim);
  if (!(is >> key) || key != name) throw EnvError(path + ": expected '" + name + "'");
  for (auto& x : v)
    if (!(is >> x)) throw EnvError(path + ": short '" + name + "' row (expected " + std::to_string(dim) + " values)");
  return v;
}

std::ofstream open_out(const std::string& path) {
  std::ofstream os(path);
  if (!os) throw EnvError("cannot write normalisation statistics to '" + path + "'");
  os << std::setprecision(17);
  return os;
}

std::ifstream open_in(const std::string& path, const char* tag, size_t& dim) {
  std::ifstream is(path);
  if (!is) throw EnvError("cannot read normalisation statistics from '" + path + "'");
  std::string got, key;
  if (!(is >> got) || got != tag) throw EnvError(path + ": not a '" + tag + "' file");
  if (!(is >> key >> dim) || key != "dim" || dim == 0) throw EnvError(path + ": bad 'dim' line");
  return is;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
MinMaxNormalizer::MinMaxNormalizer(std::vector<double> low, std::vector<double> high)
    : low_(std::move(low)), high_(std::move(high)) {
  if (low_.size() != high_.size() || low_.empty())
    throw EnvError("MinMaxNormalizer: low has " + std::to_string(low_.size()) + " entries, high " +
                   std::to_string(high_.size()) + "; expected the same non-zero size");
  for (size_t i = 0; i < low_.size(); ++i)
    if (!std::isfinite(low_[i]) || !std::isfinite(high_[i]) || low_[i] > high_[i]) {
      std::ostringstream err;
      err << "MinMaxNormalizer: coordinate " << i << " has bounds [" << low_[i] << ", " << high_[i]
          << "]; expected finite low <= high";
      throw EnvError(err.str());
    }
}

MinMaxNormalizer MinMaxNormalizer::from_box(const BoxSpec& box) { return {box.low, box.high}; }

namespace {
template <typename T>
MinMaxNormalizer fit_minmax(Span<const T> data, size_t dim) {
  if (dim == 0 || data.size() == 0 || data.size() % dim != 0)
    throw EnvError("MinMaxNormalizer::fit: data has " + std::to_string(data.size()) +
                   " entries; expected a non-empty multiple of dim " + std::to_string(dim));
  std::vector<double> lo(data.begin(), data.begin() + dim), hi = lo;
  for (size_t r = 1; r < data.size() / dim; ++r)
    for (size_t i = 0; i < dim; ++i) {
      lo[i] = std::min(lo[i], static_cast<double>(data[r * dim + i]));
      hi[i] = std::max(hi[i], static_cast<double>(data[r * dim + i]));
    }
  return {lo, hi};
}
}  // namespace

MinMaxNormalizer MinMaxNormalizer::fit(Span<const double> data, size_t dim) { return fit_minmax(data, dim); }
MinMaxNormalizer MinMaxNormalizer::fit(const std::vector<float>& data, size_t dim) {
  return fit_minmax(Span<const float>(data), dim);
}

void MinMaxNormalizer::check(size_t size, const char* what) const {
  if (dim() == 0 || size % dim() != 0)
    throw EnvError(std::string("MinMaxNormalizer::") + what + ": " + std::to_string(size) +
                   " entries is not a multiple of dim " + std::to_string(dim()));
}

void MinMaxNormalizer::normalize(Span<double> x) const {
  check(x.size(), "normalize");
  for (size_t k = 0; k < x.size(); ++k) {
    const size_t i = k % dim();
    const double range = high_[i] - low_[i];
    x[k] = range > 0 ? 2.0 * (x[k] - low_[i]) / range - 1.0 : 0.0;
  }
}

void MinMaxNormalizer::denormalize(Span<double> y, bool clip) const {
  check(y.size(), "denormalize");
  for (size_t k = 0; k < y.size(); ++k) {
    const size_t i = k % dim();
    const double v = clip ? std::clamp(y[k], -1.0, 1.0) : y[k];
    y[k] = low_[i] + (v + 1.0) * 0.5 * (high_[i] - low_[i]);
  }
}

void MinMaxNormalizer::save(const std::string& path) const {
  auto os = open_out(path);
  os << kMinMaxTag << "\ndim " << dim() << '\n';
  write_vector(os, "low", low_);
  write_vector(os, "high", high_);
  if (!os) throw EnvError("error writing '" + path + "'");
}

MinMaxNormalizer MinMaxNormalizer::load(const std::string& path) {
  size_t dim = 0;
  auto is = open_in(path, kMinMaxTag, dim);
  auto lo = read_vector(is, "low", dim, path);
  auto hi = read_vector(is, "high", dim, path);
  return {lo, hi};
}

// ---------------------------------------------------------------------------------------------
RunningMeanStd::RunningMeanStd(size_t dim, double epsilon, double clip, double initial_count)
    : mean_(dim, 0.0), var_(dim, 1.0), count_(initial_count), epsilon_(epsilon), clip_(clip) {
  if (dim == 0) throw EnvError("RunningMeanStd: dim must be >= 1");
}

void RunningMeanStd::check(size_t size, const char* what) const {
  if (dim() == 0 || size % dim() != 0)
    throw EnvError(std::string("RunningMeanStd::") + what + ": " + std::to_string(size) +
                   " entries is not a multiple of dim " + std::to_string(dim()));
}

void RunningMeanStd::update(Span<const double> batch) {
  check(batch.size(), "update");
  const size_t n = batch.size() / dim();
  if (n == 0) throw EnvError("RunningMeanStd::update: empty batch");
  for (size_t k = 0; k < batch.size(); ++k)
    if (!std::isfinite(batch[k]))
      throw EnvError("RunningMeanStd::update: row " + std::to_string(k / dim()) + " coordinate " +
                     std::to_string(k % dim()) + " is not finite");
  const double bn = static_cast<double>(n), total = count_ + bn;
  for (size_t i = 0; i < dim(); ++i) {
    double m = 0.0;
    for (size_t r = 0; r < n; ++r) m += batch[r * dim() + i];
    m /= bn;
    double v = 0.0;
    for (size_t r = 0; r < n; ++r) v += (batch[r * dim() + i] - m) * (batch[r * dim() + i] - m);
    v /= bn;
    const double delta = m - mean_[i];
    const double m2 = var_[i] * count_ + v * bn + delta * delta * count_ * bn / total;
    mean_[i] += delta * bn / total;
    var_[i] = m2 / total;
  }
  count_ = total;
}

void RunningMeanStd::normalize(Span<double> x) const {
  check(x.size(), "normalize");
  for (size_t k = 0; k < x.size(); ++k) {
    const size_t i = k % dim();
    const double y = (x[k] - mean_[i]) / std::sqrt(var_[i] + epsilon_);
    x[k] = clip_ > 0 ? std::clamp(y, -clip_, clip_) : y;
  }
}

void RunningMeanStd::denormalize(Span<double> x) const {
  check(x.size(), "denormalize");
  for (size_t k = 0; k < x.size(); ++k) {
    const size_t i = k % dim();
    x[k] = x[k] * std::sqrt(var_[i] + epsilon_) + mean_[i];
  }
}

void RunningMeanStd::save(const std::string& path) const {
  auto os = open_out(path);
  os << kMeanStdTag << "\ndim " << dim() << "\ncount " << count_ << "\nepsilon " << epsilon_ << "\nclip "
     << clip_ << '\n';
  write_vector(os, "mean", mean_);
  write_vector(os, "var", var_);
  if (!os) throw EnvError("error writing '" + path + "'");
}

RunningMeanStd RunningMeanStd::load(const std::string& path) {
  size_t dim = 0;
  auto is = open_in(path, kMeanStdTag, dim);
  RunningMeanStd r(dim);
  std::string key;
  if (!(is >> key >> r.count_) || key != "count") throw EnvError(path + ": bad 'count' line");
  if (!(is >> key >> r.epsilon_) || key != "epsilon") throw EnvError(path + ": bad 'epsilon' line");
  if (!(is >> key >> r.clip_) || key != "clip") throw EnvError(path + ": bad 'clip' line");
  r.mean_ = read_vector(is, "mean", dim, path);
  r.var_ = read_vector(is, "var", dim, path);
  return r;
}

}  // namespace rldt
