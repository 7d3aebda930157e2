#include "nn/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace symgrad::nn {

namespace {
constexpr int kMaxRank = 16;                                    // more is not an IDX file
constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 40;  // guards the size arithmetic

bool is_known_type(std::uint8_t code) {
  return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D || code == 0x0E;
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += 'x';
    s += std::to_string(dims[i]);
  }
  return s;
}

std::string hex_bytes(const std::vector<std::uint8_t>& bytes, std::size_t n) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < n && i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    if (i > 0) s += ' ';
    s += buf;
  }
  return s;
}

// "60000x28x28 = 47040000 bytes of u8" or "10x3 = 30 values of i16 = 60 bytes".
std::string payload_text(const std::vector<std::int64_t>& dims, IdxType type, std::uint64_t numel) {
  const std::uint64_t nbytes = numel * idx_type_size(type);
  if (idx_type_size(type) == 1)
    return dims_text(dims) + " = " + std::to_string(nbytes) + " bytes of " + idx_type_name(type);
  return dims_text(dims) + " = " + std::to_string(numel) + " values of " + idx_type_name(type) + " = " +
         std::to_string(nbytes) + " bytes";
}

// The whole file, decompressed if it is gzip. `gzip` tells the caller which it was.
std::vector<std::uint8_t> read_file_bytes(const std::string& path, bool& gzip) {
  const std::string where = "read_idx: " + path;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(where + ": cannot open: " + std::strerror(errno));
  std::uint8_t magic[2] = {0, 0};
  const std::size_t got = std::fread(magic, 1, 2, f);
  gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  std::vector<std::uint8_t> bytes;
  if (!gzip) {
    bytes.assign(magic, magic + got);
    std::uint8_t chunk[1 << 16];
    std::size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw std::runtime_error(where + ": cannot read: " + std::strerror(errno));
    return bytes;
  }
  std::fclose(f);

  gzFile gz = ::gzopen(path.c_str(), "rb");
  if (!gz) throw std::runtime_error(where + ": cannot open: " + std::strerror(errno));
  ::gzbuffer(gz, 1 << 17);
  constexpr std::size_t kChunk = 1 << 20;
  for (;;) {
    const std::size_t old = bytes.size();
    bytes.resize(old + kChunk);
    const int n = ::gzread(gz, bytes.data() + old, static_cast<unsigned>(kChunk));
    bytes.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
    if (n <= 0) break;
  }
  int err = Z_OK;
  const std::string message = ::gzerror(gz, &err);
  ::gzclose(gz);
  // zlib reports a stream that stops early as Z_BUF_ERROR, and bad compressed data as
  // Z_DATA_ERROR (a damaged file, or a CRC that does not match).
  if (err == Z_BUF_ERROR)
    throw std::runtime_error(where + ": file is truncated: the gzip stream ends early (after " +
                             std::to_string(bytes.size()) + " decompressed bytes)");
  if (err != Z_OK) throw std::runtime_error(where + ": gzip data is corrupted: " + message);
  return bytes;
}

// The big-endian element of `type` at p, as double.
double decode(const std::uint8_t* p, IdxType type) {
  std::uint64_t bits = 0;
  for (std::size_t b = 0; b < idx_type_size(type); ++b) bits = (bits << 8) | p[b];
  switch (type) {
    case IdxType::u8: return static_cast<double>(bits);
    case IdxType::i8: return static_cast<double>(static_cast<std::int8_t>(bits));
    case IdxType::i16: return static_cast<double>(static_cast<std::int16_t>(bits));
    case IdxType::i32: return static_cast<double>(static_cast<std::int32_t>(bits));
    case IdxType::f32: return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits)));
    case IdxType::f64: return std::bit_cast<double>(bits);
  }
  return 0.0;
}

// Big-endian bytes of v as `type`; v has been checked to fit.
void encode(double v, IdxType type, std::uint8_t* out) {
  std::uint64_t bits = 0;
  switch (type) {
    case IdxType::u8: bits = static_cast<std::uint8_t>(v); break;
    case IdxType::i8: bits = static_cast<std::uint8_t>(static_cast<std::int8_t>(v)); break;
    case IdxType::i16: bits = static_cast<std::uint16_t>(static_cast<std::int16_t>(v)); break;
    case IdxType::i32: bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(v)); break;
    case IdxType::f32: bits = std::bit_cast<std::uint32_t>(static_cast<float>(v)); break;
    case IdxType::f64: bits = std::bit_cast<std::uint64_t>(v); break;
  }
  const std::size_t size = idx_type_size(type);
  for (std::size_t b = 0; b < size; ++b) out[b] = static_cast<std::uint8_t>(bits >> (8 * (size - 1 - b)));
}

// Whether v can be stored as `type` without changing it (floats: without overflowing).
bool fits(double v, IdxType type) {
  auto integer_in = [&](double lo, double hi) { return v == std::floor(v) && v >= lo && v <= hi; };
  switch (type) {
    case IdxType::u8: return integer_in(0, 255);
    case IdxType::i8: return integer_in(-128, 127);
    case IdxType::i16: return integer_in(-32768, 32767);
    case IdxType::i32: return integer_in(-2147483648.0, 2147483647.0);
    case IdxType::f32: return !std::isfinite(v) || std::abs(v) <= std::numeric_limits<float>::max();
    case IdxType::f64: return true;
  }
  return false;
}
}  // namespace

const char* idx_type_name(IdxType type) {
  switch (type) {
    case IdxType::u8: return "u8";
    case IdxType::i8: return "i8";
    case IdxType::i16: return "i16";
    case IdxType::i32: return "i32";
    case IdxType::f32: return "f32";
    case IdxType::f64: return "f64";
  }
  return "unknown";
}

std::size_t idx_type_size(IdxType type) {
  switch (type) {
    case IdxType::u8:
    case IdxType::i8: return 1;
    case IdxType::i16: return 2;
    case IdxType::i32:
    case IdxType::f32: return 4;
    case IdxType::f64: return 8;
  }
  return 1;
}

std::int64_t IdxArray::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : dims) n *= d;
  return n;
}

IdxArray read_idx(const std::string& path) {
  bool gzip = false;
  std::vector<std::uint8_t> bytes = read_file_bytes(path, gzip);
  const std::string where = "read_idx: " + path + (gzip ? " (gzip)" : "");

  if (bytes.size() < 4)
    throw std::runtime_error(where + ": file is truncated: " + std::to_string(bytes.size()) +
                             " bytes, too short for the 4-byte IDX magic");
  if (bytes[0] != 0 || bytes[1] != 0 || !is_known_type(bytes[2]) || bytes[3] == 0 || bytes[3] > kMaxRank) {
    std::string why = "not an IDX file: it starts with " + hex_bytes(bytes, 4) +
                      ", an IDX file with 00 00, a type (08 u8, 09 i8, 0b i16, 0c i32, 0d f32, 0e f64)"
                      " and a rank (1 to " +
                      std::to_string(kMaxRank) + ")";
    if (bytes[0] == 0 && bytes[1] == 0 && !is_known_type(bytes[2]))
      why = "unknown IDX element type " + hex_bytes({bytes[2]}, 1) +
            " (known: 08 u8, 09 i8, 0b i16, 0c i32, 0d f32, 0e f64)";
    throw std::runtime_error(where + ": " + why);
  }
  IdxArray out;
  out.type = static_cast<IdxType>(bytes[2]);
  const std::size_t rank = bytes[3];
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    throw std::runtime_error(where + ": file is truncated: the header of a rank-" + std::to_string(rank) +
                             " IDX file takes " + std::to_string(header) + " bytes, found " +
                             std::to_string(bytes.size()));
  std::uint64_t numel = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * i;
    const std::uint64_t d =
        (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) | (std::uint64_t{p[2]} << 8) | p[3];
    out.dims.push_back(static_cast<std::int64_t>(d));
    numel = (d == 0 || numel == 0) ? 0 : (numel > kMaxElements / d ? kMaxElements + 1 : numel * d);
  }
  if (numel > kMaxElements)
    throw std::runtime_error(where + ": dimensions " + dims_text(out.dims) +
                             " are implausibly large; not an IDX file");

  const std::uint64_t expected = numel * idx_type_size(out.type);
  const std::uint64_t found = bytes.size() - header;
  if (found < expected)
    throw std::runtime_error(where + ": file is truncated: header says " +
                             payload_text(out.dims, out.type, numel) + ", found " + std::to_string(found));
  if (found > expected)
    throw std::runtime_error(where + ": " + std::to_string(found - expected) +
                             " unexpected bytes after the data (header says " +
                             payload_text(out.dims, out.type, numel) + ", found " + std::to_string(found) +
                             "); not an IDX file, or damaged");

  if (out.type == IdxType::u8) {
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    out.bytes = std::move(bytes);
  } else {
    out.values.resize(numel);
    const std::size_t size = idx_type_size(out.type);
    for (std::uint64_t i = 0; i < numel; ++i)
      out.values[i] = decode(bytes.data() + header + i * size, out.type);
  }
  return out;
}

void write_idx(const std::string& path, const IdxArray& a, bool gzip) {
  const std::string where = "write_idx: " + path;
  if (!is_known_type(static_cast<std::uint8_t>(a.type)))
    throw std::invalid_argument(where + ": unknown element type " + std::to_string(static_cast<int>(a.type)));
  if (a.dims.empty() || a.dims.size() > static_cast<std::size_t>(kMaxRank))
    throw std::invalid_argument(where + ": rank " + std::to_string(a.dims.size()) + " is not in 1.." +
                                std::to_string(kMaxRank));
  for (std::int64_t d : a.dims)
    if (d < 0 || d > 0xffffffffLL)
      throw std::invalid_argument(where + ": dimension " + std::to_string(d) + " does not fit IDX's uint32");
  const std::size_t numel = static_cast<std::size_t>(a.numel());
  const bool is_u8 = a.type == IdxType::u8;
  const std::size_t have = is_u8 ? a.bytes.size() : a.values.size();
  if (have != numel)
    throw std::invalid_argument(where + ": dims " + dims_text(a.dims) + " hold " + std::to_string(numel) +
                                " " + idx_type_name(a.type) + " values but " + (is_u8 ? "bytes" : "values") +
                                " has " + std::to_string(have));

  const std::size_t size = idx_type_size(a.type);
  std::vector<std::uint8_t> out(4 + 4 * a.dims.size() + numel * size);
  out[2] = static_cast<std::uint8_t>(a.type);
  out[3] = static_cast<std::uint8_t>(a.dims.size());
  for (std::size_t i = 0; i < a.dims.size(); ++i)
    for (std::size_t b = 0; b < 4; ++b)
      out[4 + 4 * i + b] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(a.dims[i]) >> (8 * (3 - b)));
  std::uint8_t* payload = out.data() + 4 + 4 * a.dims.size();
  if (is_u8) {
    if (numel > 0) std::memcpy(payload, a.bytes.data(), numel);
  } else {
    for (std::size_t i = 0; i < numel; ++i) {
      if (!fits(a.values[i], a.type))
        throw std::invalid_argument(where + ": value " + std::to_string(a.values[i]) + " at index " +
                                    std::to_string(i) + " does not fit " + idx_type_name(a.type));
      encode(a.values[i], a.type, payload + i * size);
    }
  }

  if (gzip) {
    gzFile gz = ::gzopen(path.c_str(), "wb");
    if (!gz) throw std::runtime_error(where + ": cannot create: " + std::strerror(errno));
    bool ok = true;
    constexpr std::size_t kChunk = 1 << 30;  // gzwrite takes an unsigned count
    for (std::size_t at = 0; ok && at < out.size(); at += kChunk) {
      const auto n = static_cast<unsigned>(std::min(kChunk, out.size() - at));
      ok = ::gzwrite(gz, out.data() + at, n) == static_cast<int>(n);
    }
    const bool closed = ::gzclose(gz) == Z_OK;
    if (!ok || !closed) throw std::runtime_error(where + ": cannot write: " + std::strerror(errno));
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error(where + ": cannot create: " + std::strerror(errno));
  const bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw std::runtime_error(where + ": cannot write: " + std::strerror(errno));
}

}  // namespace symgrad::nn
