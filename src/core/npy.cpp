#include "polyhead/npy.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "polyhead/error.h"

namespace polyhead {
namespace {

// Value of `key` in the header dict, e.g. "'descr': '<f4'" -> "'<f4'".
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const size_t k = header.find("'" + key + "'");
  POLYHEAD_CHECK(k != std::string::npos, path, ": npy header has no '", key, "'");
  size_t v = header.find(':', k);
  POLYHEAD_CHECK(v != std::string::npos, path, ": malformed npy header");
  ++v;
  while (v < header.size() && header[v] == ' ') ++v;
  size_t e = v;
  if (header[v] == '(') {
    e = header.find(')', v);
    POLYHEAD_CHECK(e != std::string::npos, path, ": malformed npy shape");
    return header.substr(v, e - v + 1);
  }
  while (e < header.size() && header[e] != ',' && header[e] != '}') ++e;
  return header.substr(v, e - v);
}

std::string strip(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\'' || s.back() == '"')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\'' || s[b] == '"')) ++b;
  return s.substr(b);
}

}  // namespace

TensorView NpyArray::view() const {
  POLYHEAD_CHECK(shape.size() <= size_t(kMaxRank), "npy array of rank ", shape.size(),
                 " exceeds the maximum rank ", kMaxRank);
  TensorView t;
  t.data = data->data();
  t.dtype = dtype;
  t.rank = int(shape.size());
  int64_t stride = 1;
  for (int d = t.rank - 1; d >= 0; --d) {
    t.shape[size_t(d)] = shape[size_t(d)];
    t.stride[size_t(d)] = stride;
    stride *= shape[size_t(d)];
  }
  return t;
}

NpyArray load_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  POLYHEAD_CHECK(f.good(), path, ": cannot open file");
  char magic[8] = {};
  f.read(magic, 8);
  POLYHEAD_CHECK(f.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0, path,
                 ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    header_len = uint32_t(b[0]) | uint32_t(b[1]) << 8;
  } else {
    POLYHEAD_CHECK(major == 2 || major == 3, path, ": unsupported .npy version ", major);
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    header_len = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  }
  POLYHEAD_CHECK(f.good() && header_len < (1u << 20), path, ": truncated .npy header");
  std::string header(header_len, '\0');
  f.read(header.data(), header_len);
  POLYHEAD_CHECK(f.good(), path, ": truncated .npy header");

  const std::string descr = strip(dict_value(header, "descr", path));
  const bool fortran = strip(dict_value(header, "fortran_order", path)) == "True";
  const std::string shape_text = dict_value(header, "shape", path);

  NpyArray a;
  int64_t esize = 0;
  bool from_i64 = false;
  if (descr == "<f4")
    a.dtype = DType::f32, esize = 4;
  else if (descr == "<f8")
    a.dtype = DType::f64, esize = 8;
  else if (descr == "<f2")
    a.dtype = DType::f16, esize = 2;
  else if (descr == "<i4")
    a.dtype = DType::i32, esize = 4;
  else if (descr == "<i8")
    a.dtype = DType::i32, esize = 8, from_i64 = true;
  else if (descr == "|u1" || descr == "|b1")
    a.dtype = DType::u8, esize = 1;
  else
    POLYHEAD_FAIL(path, ": dtype '", descr,
                  "' is not supported (float32, float64, float16, int32, int64, uint8, bool)");

  int64_t count = 1;
  {
    std::string inner = shape_text.substr(1, shape_text.size() - 2);
    std::stringstream ss(inner);
    std::string item;
    while (std::getline(ss, item, ',')) {
      item = strip(item);
      if (item.empty()) continue;
      int64_t n = 0;
      try {
        n = std::stoll(item);
      } catch (...) {
        POLYHEAD_FAIL(path, ": malformed shape ", shape_text);
      }
      POLYHEAD_CHECK(n >= 0, path, ": negative dimension in shape ", shape_text);
      a.shape.push_back(n);
      POLYHEAD_CHECK(!__builtin_mul_overflow(count, n, &count), path, ": shape ", shape_text,
                     " overflows");
    }
  }
  std::vector<uint8_t> raw(size_t(count * esize));
  f.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size()));
  POLYHEAD_CHECK(f.gcount() == std::streamsize(raw.size()), path, ": file holds fewer than the ",
                 count, " elements its header announces");

  if (from_i64) {
    std::vector<uint8_t> narrowed(size_t(count * 4));
    for (int64_t i = 0; i < count; ++i) {
      int64_t v;
      std::memcpy(&v, raw.data() + i * 8, 8);
      POLYHEAD_CHECK(
          v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(),
          path, ": int64 value ", v, " does not fit int32");
      const int32_t w = int32_t(v);
      std::memcpy(narrowed.data() + i * 4, &w, 4);
    }
    raw.swap(narrowed);
    esize = 4;
  }
  if (fortran && a.shape.size() > 1) {
    // Column-major on disk: element (i0, ..., in) sits at sum_d i_d * prod_{e<d} n_e.
    std::vector<uint8_t> c_order(raw.size());
    const size_t rank = a.shape.size();
    std::vector<int64_t> idx(rank, 0);
    for (int64_t lin = 0; lin < count; ++lin) {
      int64_t off = 0, mul = 1;
      for (size_t d = 0; d < rank; ++d) off += idx[d] * mul, mul *= a.shape[d];
      std::memcpy(c_order.data() + lin * esize, raw.data() + off * esize, size_t(esize));
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < a.shape[d]) break;
        idx[d] = 0;
      }
    }
    raw.swap(c_order);
  }
  a.data = std::make_shared<std::vector<uint8_t>>(std::move(raw));
  return a;
}

void save_npy(const std::string& path, const TensorView& t) {
  std::string descr;
  switch (t.dtype) {
    case DType::f32:
      descr = "<f4";
      break;
    case DType::f64:
      descr = "<f8";
      break;
    case DType::f16:
      descr = "<f2";
      break;
    case DType::i32:
      descr = "<i4";
      break;
    case DType::u8:
      descr = "|u1";
      break;
    default:
      POLYHEAD_FAIL(path, ": cannot write dtype ", dtype_name(t.dtype), " to .npy");
  }
  POLYHEAD_CHECK(t.device.type == DeviceType::cpu, path, ": the tensor is on ", to_string(t.device),
                 "; save_npy needs host memory");
  std::string shape = "(";
  for (int d = 0; d < t.rank; ++d) shape += std::to_string(t.shape[size_t(d)]) + ",";
  if (t.rank > 1) shape.pop_back();
  shape += ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream f(path, std::ios::binary);
  POLYHEAD_CHECK(f.good(), path, ": cannot open file for writing");
  const uint16_t len = uint16_t(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  const char lb[2] = {char(len & 0xff), char(len >> 8)};
  f.write(lb, 2);
  f.write(header.data(), std::streamsize(header.size()));
  const int64_t esize = dtype_size(t.dtype);
  const int64_t n = t.numel();
  std::vector<int64_t> idx(size_t(t.rank), 0);
  const auto* base = static_cast<const char*>(t.data);
  for (int64_t lin = 0; lin < n; ++lin) {
    int64_t off = 0;
    for (int d = 0; d < t.rank; ++d) off += idx[size_t(d)] * t.stride[size_t(d)];
    f.write(base + off * esize, std::streamsize(esize));
    for (int d = t.rank; d-- > 0;) {
      if (++idx[size_t(d)] < t.shape[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
  }
  POLYHEAD_CHECK(f.good(), path, ": write failed");
}

}  // namespace polyhead
