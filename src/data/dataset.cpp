// Dataset I/O: a small zip reader/writer for numpy's .npz (stored and deflated members, zip64
// records as numpy writes them), the .npy header format, and D4RL's HDF5 layout through the
// HDF5 C API.
#include "rldt/data/dataset.hpp"

#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace rldt {

namespace {

[[noreturn]] void fail(const std::string& source, const std::string& msg) { throw DatasetError(source + ": " + msg); }
[[noreturn]] void fail_key(const std::string& source, const std::string& key, const std::string& msg) {
  throw DatasetError(source + ": key '" + key + "': " + msg);
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// ---------------------------------------------------------------------------------------------
// Little-endian byte access
// ---------------------------------------------------------------------------------------------
uint64_t read_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A bounds-checked view of the file's bytes; every read names the file when it runs off the end.
struct Bytes {
  const std::vector<uint8_t>& b;
  const std::string& path;
  uint64_t get(uint64_t off, int n, const char* what) const {
    if (off > b.size() || b.size() - off < static_cast<uint64_t>(n))
      fail(path, std::string("truncated or not a zip (.npz) file (") + what + " lies beyond the end)");
    return read_le(b.data() + off, n);
  }
};

std::vector<uint8_t> read_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw DatasetError(path + ": the dataset file does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DatasetError(path + ": cannot open (" + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<uint8_t> buf(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(size)))
    throw DatasetError(path + ": read error");
  return buf;
}

// ---------------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------------
int itemsize_of(const std::string& descr) {
  static const std::map<std::string, int> sizes = {{"<f4", 4}, {"<f8", 8}, {"|b1", 1}, {"|u1", 1},
                                                   {"|i1", 1}, {"<i4", 4}, {"<i8", 8}};
  auto it = sizes.find(descr);
  return it == sizes.end() ? 0 : it->second;
}

// Value of `'key': ...` in a numpy header dict, as raw text up to the next top-level comma.
std::string header_value(const std::string& h, const std::string& key, const std::string& where) {
  const size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) fail(where, "the .npy header lacks '" + key + "'");
  size_t p = h.find(':', k);
  if (p == std::string::npos) fail(where, "malformed .npy header");
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  size_t e = p;
  int depth = 0;
  bool quoted = false;
  for (; e < h.size(); ++e) {
    const char c = h[e];
    if (c == '\'' || c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) break;
      --depth;
    }
    if (c == ',' && depth == 0) break;
  }
  return h.substr(p, e - p);
}

// Parses one .npy member (`bytes`, `n` long). `where` = "file: key 'k'" for errors.
NpyArray parse_npy(const uint8_t* bytes, size_t n, const std::string& where) {
  static const char magic[] = "\x93NUMPY";
  if (n < 10 || std::memcmp(bytes, magic, 6) != 0) fail(where, "not a .npy array (bad magic)");
  const int major = bytes[6];
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = read_le(bytes + 8, 2);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12) fail(where, "truncated .npy header");
    header_len = read_le(bytes + 8, 4);
    start = 12;
  } else {
    fail(where, ".npy format version " + std::to_string(major) + " is not supported");
  }
  if (start + header_len > n) fail(where, "truncated .npy header");
  const std::string h(reinterpret_cast<const char*>(bytes + start), header_len);
  NpyArray a;
  std::string descr = header_value(h, "descr", where);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"'))
    fail(where, "unsupported dtype " + descr + " (structured arrays are not datasets)");
  a.dtype = descr.substr(1, descr.size() - 2);
  if (a.dtype.size() == 3 && a.dtype[0] == '=') a.dtype[0] = a.dtype[1] == 'f' || a.dtype[1] == 'i' ? '<' : '|';
  if (a.dtype.size() == 3 && a.dtype[0] == '>' && itemsize_of("<" + a.dtype.substr(1)) > 1)
    fail(where, "dtype '" + a.dtype + "' is big-endian; save the array little-endian (numpy's default)");
  if (a.dtype.size() == 3 && a.dtype[0] == '<' && itemsize_of(a.dtype) == 1) a.dtype[0] = '|';
  if (itemsize_of(a.dtype) == 0)
    fail(where, "unsupported dtype '" + a.dtype +
                    "'; expected float32 (<f4), float64 (<f8), bool (|b1), uint8 (|u1), "
                    "int8, int32 or int64");
  const std::string fortran = header_value(h, "fortran_order", where);
  if (fortran.rfind("True", 0) == 0)
    fail(where, "the array is in Fortran order; save it in C order (np.ascontiguousarray)");
  if (fortran.rfind("False", 0) != 0) fail(where, "malformed fortran_order in the .npy header");
  std::string shape = header_value(h, "shape", where);
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') fail(where, "malformed shape " + shape);
  std::stringstream ss(shape.substr(1, shape.size() - 2));
  for (std::string tok; std::getline(ss, tok, ',');) {
    const size_t b = tok.find_first_not_of(" L"), e = tok.find_last_not_of(" L");
    if (b == std::string::npos) continue;
    tok = tok.substr(b, e - b + 1);
    if (tok.find_first_not_of("0123456789") != std::string::npos) fail(where, "malformed shape " + shape);
    a.shape.push_back(std::stoll(tok));
  }
  const uint64_t want = static_cast<uint64_t>(a.numel()) * static_cast<uint64_t>(itemsize_of(a.dtype));
  const size_t data_start = start + header_len;
  if (n - data_start < want)
    fail(where, "truncated array data (" + std::to_string(n - data_start) + " bytes, shape " + shape_text(a.shape) +
                    " needs " + std::to_string(want) + ")");
  a.data.assign(bytes + data_start, bytes + data_start + want);
  return a;
}

std::string npy_bytes(const NpyArray& a) {
  std::string dict = "{'descr': '" + a.dtype + "', 'fortran_order': False, 'shape': " + shape_text(a.shape) + ", }";
  // numpy pads the header with spaces so the data starts at a multiple of 64, ending in '\n'.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  put_le(out, dict.size(), 2);
  out += dict;
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  return out;
}

// ---------------------------------------------------------------------------------------------
// .zip
// ---------------------------------------------------------------------------------------------
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;

std::vector<uint8_t> inflate_raw(const uint8_t* src, size_t n, size_t out_size, const std::string& where) {
  std::vector<uint8_t> out(out_size);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(where, "zlib inflateInit failed");
  size_t in_done = 0, out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {  // chunks of < 4 GiB (zlib's counters are 32-bit)
    const size_t in_chunk = std::min<size_t>(n - in_done, 1u << 30),
                 out_chunk = std::min<size_t>(out_size - out_done, 1u << 30);
    zs.next_in = const_cast<Bytef*>(src + in_done);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + out_done;
    zs.avail_out = static_cast<uInt>(out_chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    in_done += in_chunk - zs.avail_in;
    out_done += out_chunk - zs.avail_out;
    if (rc == Z_OK && in_chunk == zs.avail_in && out_chunk == zs.avail_out) rc = Z_BUF_ERROR;  // no progress
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out_done != out_size)
    fail(where, "corrupt deflate data (zlib: " + std::string(zs.msg ? zs.msg : "stream ended early") + ")");
  return out;
}

uint32_t crc_of(const uint8_t* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt c = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, p, c);
    p += c;
    n -= c;
  }
  return static_cast<uint32_t>(crc);
}

std::string deflate_raw(const std::string& src, const std::string& path) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fail(path, "zlib deflateInit failed");
  std::string out(deflateBound(&zs, static_cast<uLong>(src.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(src.data()));
  zs.avail_in = static_cast<uInt>(src.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) fail(path, "zlib deflate failed");
  return out;
}

void write_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path() && !fs::is_directory(target.parent_path()))
    throw DatasetError(path + ": cannot write: the folder '" + target.parent_path().string() + "' does not exist");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw DatasetError(tmp + ": cannot write (" + std::strerror(errno) + ")");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw DatasetError(tmp + ": write error (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw DatasetError(path + ": cannot rename the temporary file into place: " + ec.message());
  }
}

// ---------------------------------------------------------------------------------------------
// Columns: one array with its values as float, whatever the file's dtype.
// ---------------------------------------------------------------------------------------------
struct Column {
  std::vector<int64_t> shape;
  std::vector<float> values;
  bool is_float = true;  // false: an integer/bool type (flags)
};

Column column_from_npy(const NpyArray& a) {
  Column c;
  c.shape = a.shape;
  c.is_float = a.dtype[1] == 'f';
  if (a.dtype == "<f4") {
    c.values.resize(static_cast<size_t>(a.numel()));
    if (!c.values.empty()) std::memcpy(c.values.data(), a.data.data(), c.values.size() * sizeof(float));
  } else {
    const auto d = a.to_double();
    c.values.assign(d.begin(), d.end());
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Arrays → Dataset
// ---------------------------------------------------------------------------------------------
Dataset assemble(std::map<std::string, Column>& cols, const std::string& path) {
  for (const char* key : {"observations", "actions", "rewards", "terminals", "timeouts"})
    if (!cols.count(key)) {
      std::string have;
      for (const auto& [k, v] : cols) have += (have.empty() ? "" : ", ") + k;
      fail_key(path, key,
               "missing (the file has: " + (have.empty() ? std::string("nothing") : have) +
                   "); a D4RL dataset needs observations, actions, rewards, terminals, timeouts");
    }
  Dataset d;
  auto& obs = cols["observations"];
  if (obs.shape.size() != 2) fail_key(path, "observations", "has shape " + shape_text(obs.shape) + ", expected (N, O)");
  const int64_t n = obs.shape[0];
  d.obs_dim = obs.shape[1];
  auto& act = cols["actions"];
  if (act.shape.size() != 2) fail_key(path, "actions", "has shape " + shape_text(act.shape) + ", expected (N, d)");
  d.action_dim = act.shape[1];
  auto rows = [&](const char* key, const Column& c, int64_t width) {
    const bool ok = c.shape.size() == 2 ? c.shape[1] == width : (width == 1 && c.shape.size() == 1);
    if (!ok || c.shape[0] != n)
      fail_key(path, key,
               "has shape " + shape_text(c.shape) + ", expected " +
                   (width == 1 ? "(" + std::to_string(n) + ",)"
                               : "(" + std::to_string(n) + ", " + std::to_string(width) + ")") +
                   " to match observations " + shape_text(obs.shape));
  };
  rows("actions", act, d.action_dim);
  auto flat = [&](const char* key) -> Column& {
    auto& c = cols[key];
    if (c.shape.size() == 2 && c.shape[1] == 1) c.shape.pop_back();  // (N, 1) → (N,)
    rows(key, c, 1);
    return c;
  };
  if (!obs.is_float) fail_key(path, "observations", "must be a float array");
  if (!act.is_float) fail_key(path, "actions", "must be a float array");
  d.observations = std::move(obs.values);
  d.actions = std::move(act.values);
  d.rewards = std::move(flat("rewards").values);
  for (const char* key : {"terminals", "timeouts"}) {
    auto& c = flat(key);
    auto& out = std::string(key) == "terminals" ? d.terminals : d.timeouts;
    out.resize(c.values.size());
    for (size_t i = 0; i < c.values.size(); ++i) {
      const float v = c.values[i];
      if (v != 0.0f && v != 1.0f)
        fail_key(path, key, "row " + std::to_string(i) + " holds " + std::to_string(v) + "; flags must be 0 or 1");
      out[i] = v != 0.0f;
    }
  }
  if (cols.count("next_observations")) {
    auto& next = cols["next_observations"];
    rows("next_observations", next, d.obs_dim);
    d.next_observations = std::move(next.values);
  }
  d.validate(path);
  return d;
}

// ---------------------------------------------------------------------------------------------
// HDF5
// ---------------------------------------------------------------------------------------------
// Closes an HDF5 handle on scope exit.
struct H5Id {
  hid_t id = H5I_INVALID_HID;
  herr_t (*close)(hid_t) = nullptr;
  H5Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() {
    if (id >= 0 && close) close(id);
  }
};

// Silences HDF5's automatic error printing while reading (errors become DatasetError).
struct H5Quiet {
  H5E_auto2_t func = nullptr;
  void* data = nullptr;
  H5Quiet() {
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~H5Quiet() { H5Eset_auto2(H5E_DEFAULT, func, data); }
};

Column read_h5_column(hid_t file, const std::string& key, const std::string& path) {
  H5Id ds(H5Dopen2(file, key.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.id < 0) fail_key(path, key, "is not a dataset");
  H5Id space(H5Dget_space(ds.id), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 0 || rank > 8) fail_key(path, key, "unreadable dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  Column c;
  size_t n = 1;
  for (auto v : dims) {
    c.shape.push_back(static_cast<int64_t>(v));
    n *= static_cast<size_t>(v);
  }
  H5Id type(H5Dget_type(ds.id), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.id);
  c.values.resize(n);
  if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
    c.is_float = cls == H5T_FLOAT;
    if (n > 0 && H5Dread(ds.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.values.data()) < 0)
      fail_key(path, key, "HDF5 read failed");
  } else if (cls == H5T_ENUM) {  // h5py stores bool as an int8 enum {FALSE, TRUE}
    c.is_float = false;
    H5Id native(H5Tget_native_type(type.id, H5T_DIR_ASCEND), H5Tclose);
    const size_t size = H5Tget_size(native.id);
    if (size != 1 && size != 2 && size != 4 && size != 8) fail_key(path, key, "unsupported enum size");
    std::vector<uint8_t> raw(n * size);
    if (n > 0 && H5Dread(ds.id, native.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
      fail_key(path, key, "HDF5 read failed");
    for (size_t i = 0; i < n; ++i) {
      const uint64_t u = read_le(raw.data() + i * size, static_cast<int>(size));
      c.values[i] = static_cast<float>(u);  // the member values (FALSE = 0, TRUE = 1)
    }
  } else {
    fail_key(path, key, "has an unsupported HDF5 type class (expected float, integer or bool)");
  }
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// NpyArray
// ---------------------------------------------------------------------------------------------
int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::vector<double> NpyArray::to_double() const {
  const size_t n = static_cast<size_t>(numel());
  std::vector<double> out(n);
  const uint8_t* p = data.data();
  for (size_t i = 0; i < n; ++i) {
    if (dtype == "<f4") {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      out[i] = f;
    } else if (dtype == "<f8") {
      std::memcpy(&out[i], p + 8 * i, 8);
    } else if (dtype == "|b1" || dtype == "|u1") {
      out[i] = p[i];
    } else if (dtype == "|i1") {
      out[i] = static_cast<int8_t>(p[i]);
    } else if (dtype == "<i4") {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = v;
    } else if (dtype == "<i8") {
      int64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<double>(v);
    } else {
      throw DatasetError("unsupported dtype '" + dtype + "'");
    }
  }
  return out;
}

std::vector<std::pair<std::string, NpyArray>> read_npz(const std::string& path) {
  const std::vector<uint8_t> buf = read_file(path);
  const Bytes b{buf, path};
  // End of central directory: the last signature within the final 64 KiB + 22 bytes.
  if (buf.size() < 22) fail(path, "not a zip (.npz) file (" + std::to_string(buf.size()) + " bytes)");
  int64_t eocd = -1;
  for (int64_t p = static_cast<int64_t>(buf.size()) - 22; p >= 0 && p >= static_cast<int64_t>(buf.size()) - 22 - 65535;
       --p)
    if (read_le(buf.data() + p, 4) == kEndSig) {
      eocd = p;
      break;
    }
  if (eocd < 0) fail(path, "not a zip (.npz) file or truncated (no end-of-central-directory record)");
  uint64_t entries = b.get(eocd + 10, 2, "entry count"), cd_offset = b.get(eocd + 16, 4, "directory offset");
  if (entries == 0xffff || cd_offset == 0xffffffff) {  // zip64
    if (eocd < 20 || b.get(eocd - 20, 4, "zip64 locator") != kZip64LocatorSig) fail(path, "corrupt zip64 records");
    const uint64_t z = b.get(eocd - 20 + 8, 8, "zip64 record offset");
    if (b.get(z, 4, "zip64 record") != kZip64EndSig) fail(path, "corrupt zip64 end record");
    entries = b.get(z + 32, 8, "zip64 entry count");
    cd_offset = b.get(z + 48, 8, "zip64 directory offset");
  }
  std::vector<std::pair<std::string, NpyArray>> out;
  uint64_t p = cd_offset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (b.get(p, 4, "central directory") != kCentralSig) fail(path, "corrupt central directory");
    const uint64_t flags = b.get(p + 8, 2, "flags"), method = b.get(p + 10, 2, "method");
    const uint32_t crc = static_cast<uint32_t>(b.get(p + 16, 4, "crc"));
    uint64_t csize = b.get(p + 20, 4, "size"), usize = b.get(p + 24, 4, "size");
    const uint64_t name_len = b.get(p + 28, 2, "name"), extra_len = b.get(p + 30, 2, "extra"),
                   comment_len = b.get(p + 32, 2, "comment");
    uint64_t local = b.get(p + 42, 4, "offset");
    b.get(p + 46 + name_len + extra_len, 0, "entry");
    std::string name(reinterpret_cast<const char*>(buf.data() + p + 46), name_len);
    // zip64 extra field (id 1): the 0xffffffff sizes/offset, in this order.
    for (uint64_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint64_t id = b.get(x, 2, "extra"), len = b.get(x + 2, 2, "extra");
      if (id == 1) {
        uint64_t q = x + 4;
        for (uint64_t* field : {&usize, &csize, &local})
          if (*field == 0xffffffff) {
            *field = b.get(q, 8, "zip64 field");
            q += 8;
          }
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    std::string key =
        name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0 ? name.substr(0, name.size() - 4) : name;
    const std::string where = path + ": key '" + key + "'";
    if (flags & 1) fail(where, "the member is encrypted");
    if (b.get(local, 4, "local header") != kLocalSig) fail(where, "corrupt local header");
    const uint64_t data = local + 30 + b.get(local + 26, 2, "local name") + b.get(local + 28, 2, "local extra");
    if (data > buf.size() || buf.size() - data < csize) fail(where, "truncated member data");
    std::vector<uint8_t> raw;
    if (method == 0) {
      if (csize != usize) fail(where, "stored member with different sizes");
      raw.assign(buf.begin() + static_cast<std::ptrdiff_t>(data),
                 buf.begin() + static_cast<std::ptrdiff_t>(data + csize));
    } else if (method == 8) {
      raw = inflate_raw(buf.data() + data, csize, usize, where);
    } else {
      fail(where, "zip compression method " + std::to_string(method) +
                      " is not supported (stored or deflate: np.savez / np.savez_compressed)");
    }
    if (crc_of(raw.data(), raw.size()) != crc) fail(where, "CRC mismatch (corrupt file)");
    out.emplace_back(key, parse_npy(raw.data(), raw.size(), where));
  }
  return out;
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, NpyArray>>& arrays, bool compress) {
  std::string body, central;
  for (const auto& [key, arr] : arrays) {
    const std::string name = key + ".npy";
    const std::string npy = npy_bytes(arr);
    const uint32_t crc = crc_of(reinterpret_cast<const uint8_t*>(npy.data()), npy.size());
    const std::string payload = compress ? deflate_raw(npy, path) : npy;
    const uint64_t offset = body.size();
    if (npy.size() >= 0xffffffffu || payload.size() >= 0xffffffffu || offset + payload.size() >= 0xffffffffu)
      fail(path, "too large for this writer (no zip64 support; 4 GiB at most)");
    const uint16_t method = compress ? 8 : 0, version = compress ? 20 : 10;
    // Fixed time stamp (1980-01-01 00:00): identical data gives identical files.
    auto common = [&](std::string& out) {
      put_le(out, version, 2);
      put_le(out, 0, 2);  // flags
      put_le(out, method, 2);
      put_le(out, 0, 2);     // time
      put_le(out, 0x21, 2);  // date
      put_le(out, crc, 4);
      put_le(out, payload.size(), 4);
      put_le(out, npy.size(), 4);
      put_le(out, name.size(), 2);
      put_le(out, 0, 2);  // extra length
    };
    put_le(body, kLocalSig, 4);
    common(body);
    body += name;
    body += payload;
    put_le(central, kCentralSig, 4);
    put_le(central, 20, 2);  // version made by
    common(central);
    put_le(central, 0, 2);  // comment length
    put_le(central, 0, 2);  // disk
    put_le(central, 0, 2);  // internal attributes
    put_le(central, 0, 4);  // external attributes
    put_le(central, offset, 4);
    central += name;
  }
  if (body.size() + central.size() >= 0xffffffffu) fail(path, "too large for this writer (4 GiB at most)");
  const uint64_t cd_offset = body.size();
  body += central;
  put_le(body, kEndSig, 4);
  put_le(body, 0, 2);
  put_le(body, 0, 2);
  put_le(body, arrays.size(), 2);
  put_le(body, arrays.size(), 2);
  put_le(body, central.size(), 4);
  put_le(body, cd_offset, 4);
  put_le(body, 0, 2);
  write_atomic(path, body);
}

// ---------------------------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------------------------
std::vector<std::pair<int64_t, int64_t>> Dataset::episodes() const {
  std::vector<std::pair<int64_t, int64_t>> out;
  int64_t begin = 0;
  const int64_t n = size();
  for (int64_t i = 0; i < n; ++i)
    if (terminals[static_cast<size_t>(i)] || timeouts[static_cast<size_t>(i)]) {
      out.emplace_back(begin, i + 1);
      begin = i + 1;
    }
  if (begin < n) out.emplace_back(begin, n);
  return out;
}

void Dataset::validate(const std::string& source) const {
  const int64_t n = size();
  if (n < 1) fail_key(source, "rewards", "the dataset has no rows");
  if (obs_dim < 1) fail_key(source, "observations", "obs_dim must be >= 1, got " + std::to_string(obs_dim));
  if (action_dim < 1) fail_key(source, "actions", "action_dim must be >= 1, got " + std::to_string(action_dim));
  auto size_is = [&](const char* key, size_t got, int64_t width) {
    if (got != static_cast<size_t>(n * width))
      fail_key(source, key,
               "has " + std::to_string(got) + " values, expected " + std::to_string(n) + " rows x " +
                   std::to_string(width) + " (N is the length of rewards)");
  };
  size_is("observations", observations.size(), obs_dim);
  size_is("actions", actions.size(), action_dim);
  size_is("terminals", terminals.size(), 1);
  size_is("timeouts", timeouts.size(), 1);
  if (!next_observations.empty()) size_is("next_observations", next_observations.size(), obs_dim);
  auto finite = [&](const char* key, const std::vector<float>& v, int64_t width) {
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        fail_key(source, key,
                 "row " + std::to_string(static_cast<int64_t>(i) / width) + " column " +
                     std::to_string(static_cast<int64_t>(i) % width) + " is " + std::to_string(v[i]) +
                     " (values must be finite)");
  };
  finite("observations", observations, obs_dim);
  finite("actions", actions, action_dim);
  finite("rewards", rewards, 1);
  finite("next_observations", next_observations, obs_dim);
  for (const char* key : {"terminals", "timeouts"}) {
    const auto& f = std::string(key) == "terminals" ? terminals : timeouts;
    for (size_t i = 0; i < f.size(); ++i)
      if (f[i] > 1) fail_key(source, key, "row " + std::to_string(i) + " is not 0 or 1");
  }
}

void Dataset::append(const Dataset& o, int64_t begin, int64_t end) {
  if (size() == 0 && obs_dim == 0) {
    obs_dim = o.obs_dim;
    action_dim = o.action_dim;
  }
  if (o.obs_dim != obs_dim || o.action_dim != action_dim)
    throw DatasetError("Dataset::append: dims (" + std::to_string(o.obs_dim) + ", " + std::to_string(o.action_dim) +
                       ") differ from (" + std::to_string(obs_dim) + ", " + std::to_string(action_dim) + ")");
  if (begin < 0 || end > o.size() || begin > end)
    throw DatasetError("Dataset::append: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                       ") outside [0, " + std::to_string(o.size()) + ")");
  if (size() > 0 && o.has_next_observations() != has_next_observations())
    throw DatasetError("Dataset::append: next_observations present in only one dataset");
  auto rows = [&](std::vector<float>& dst, const std::vector<float>& src, int64_t w) {
    dst.insert(dst.end(), src.begin() + begin * w, src.begin() + end * w);
  };
  rows(observations, o.observations, obs_dim);
  rows(actions, o.actions, action_dim);
  rows(rewards, o.rewards, 1);
  if (o.has_next_observations()) rows(next_observations, o.next_observations, obs_dim);
  terminals.insert(terminals.end(), o.terminals.begin() + begin, o.terminals.begin() + end);
  timeouts.insert(timeouts.end(), o.timeouts.begin() + begin, o.timeouts.begin() + end);
}

Dataset load_dataset_npz(const std::string& path) {
  std::map<std::string, Column> cols;
  for (auto& [key, arr] : read_npz(path)) cols[key] = column_from_npy(arr);
  return assemble(cols, path);
}

Dataset load_dataset_hdf5(const std::string& path) {
  if (!std::filesystem::exists(path)) throw DatasetError(path + ": the dataset file does not exist");
  H5Quiet quiet;
#if H5_VERSION_GE(1, 12, 0)
  const htri_t is_hdf5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());  // Debian 12 ships HDF5 1.10
#endif
  if (is_hdf5 <= 0) fail(path, "not an HDF5 file (or unreadable)");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file.id < 0) fail(path, "cannot open as HDF5");
  std::map<std::string, Column> cols;
  for (const char* key : {"observations", "actions", "rewards", "terminals", "timeouts", "next_observations"})
    if (H5Lexists(file.id, key, H5P_DEFAULT) > 0) cols[key] = read_h5_column(file.id, key, path);
  return assemble(cols, path);
}

Dataset load_dataset(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".npz") return load_dataset_npz(path);
  if (ext == ".hdf5" || ext == ".h5") return load_dataset_hdf5(path);
  throw DatasetError(path + ": unknown dataset extension '" + ext + "'; expected .npz, .hdf5 or .h5");
}

void save_dataset_npz(const Dataset& d, const std::string& path, bool compress) {
  d.validate(path);
  const int64_t n = d.size();
  auto floats = [](const std::vector<float>& v, std::vector<int64_t> shape) {
    NpyArray a;
    a.dtype = "<f4";
    a.shape = std::move(shape);
    a.data.resize(v.size() * sizeof(float));
    if (!v.empty()) std::memcpy(a.data.data(), v.data(), a.data.size());
    return a;
  };
  auto flags = [](const std::vector<uint8_t>& v) {
    NpyArray a;
    a.dtype = "|b1";
    a.shape = {static_cast<int64_t>(v.size())};
    a.data = v;
    return a;
  };
  std::vector<std::pair<std::string, NpyArray>> arrays;
  arrays.emplace_back("observations", floats(d.observations, {n, d.obs_dim}));
  arrays.emplace_back("actions", floats(d.actions, {n, d.action_dim}));
  arrays.emplace_back("rewards", floats(d.rewards, {n}));
  arrays.emplace_back("terminals", flags(d.terminals));
  arrays.emplace_back("timeouts", flags(d.timeouts));
  if (d.has_next_observations()) arrays.emplace_back("next_observations", floats(d.next_observations, {n, d.obs_dim}));
  write_npz(path, arrays, compress);
}

}  // namespace rldt
