#include "nn/serialize.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

namespace symgrad::nn {

using nlohmann::json;

namespace {
constexpr const char* kFormatTag = "symgrad.archive";
constexpr std::int64_t kVersion = 1;

std::string errno_text() { return std::strerror(errno); }

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::uint32_t crc32_of(const std::uint8_t* bytes, std::size_t n) {
  return static_cast<std::uint32_t>(::crc32_z(::crc32_z(0L, Z_NULL, 0), bytes, n));
}

// ---- raw little-endian bytes -------------------------------------------------------
// Files are little-endian whatever the host is; on the (rare) big-endian host each
// element's bytes are reversed on the way in and out.
void reverse_elements(std::uint8_t* bytes, std::size_t nbytes, std::size_t element_size) {
  for (std::size_t i = 0; i < nbytes; i += element_size) std::reverse(bytes + i, bytes + i + element_size);
}

std::vector<std::uint8_t> little_endian_bytes(const Tensor& t) {
  const std::size_t n = static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
  std::vector<std::uint8_t> out(n);
  if (n > 0) std::memcpy(out.data(), t.raw_data(), n);
  if constexpr (std::endian::native == std::endian::big)
    reverse_elements(out.data(), n, dtype_size(t.dtype()));
  return out;
}

Tensor tensor_from_little_endian(const std::uint8_t* bytes, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  const std::size_t n = static_cast<std::size_t>(t.numel()) * dtype_size(dtype);
  auto* dst = static_cast<std::uint8_t*>(t.raw_data());
  if (n > 0) std::memcpy(dst, bytes, n);
  if constexpr (std::endian::native == std::endian::big) reverse_elements(dst, n, dtype_size(dtype));
  return t;
}

// ---- JSON numbers --------------------------------------------------------------------
// Finite values become numbers: nlohmann prints the shortest decimal that reads back as
// the same double, and a float32 value widened to double is exact, so both dtypes
// round-trip bit for bit. JSON has no NaN or infinity, so those become their bit
// pattern as a hex string.
template <class T, class Bits>
nlohmann::ordered_json values_to_json(const Tensor& t) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  const T* p = t.data<T>();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (std::isfinite(p[i])) {
      list.push_back(static_cast<double>(p[i]));
    } else {
      char buf[24];
      std::snprintf(buf, sizeof buf, "0x%0*llx", static_cast<int>(2 * sizeof(T)),
                    static_cast<unsigned long long>(std::bit_cast<Bits>(p[i])));
      list.push_back(buf);
    }
  }
  return list;
}

template <class T, class Bits>
Tensor values_from_json(const json& list, const Shape& shape, DType dtype, const std::string& where) {
  Tensor t = Tensor::empty(shape, dtype);
  T* p = t.data<T>();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& v = list[i];
    auto element = [&] { return where + ": element " + std::to_string(i); };  // for messages only
    if (v.is_number()) {
      const double d = v.get<double>();
      if constexpr (std::is_same_v<T, float>) {
        // Out-of-range double -> float conversion is undefined; an inexact one means the
        // file was not written by save_archive.
        if (!(std::abs(d) <= std::numeric_limits<float>::max()) ||
            static_cast<double>(static_cast<float>(d)) != d)
          throw std::runtime_error(element() + " (" + v.dump() + ") is not a float32 value");
      }
      p[i] = static_cast<T>(d);
    } else if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      const std::size_t digits = 2 * sizeof(T);
      const bool hex_ok = s.size() == digits + 2 && s.compare(0, 2, "0x") == 0 &&
                          std::all_of(s.begin() + 2, s.end(),
                                      [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
      if (!hex_ok)
        throw std::runtime_error(element() + " is the string '" + s + "'; expected a number or a " +
                                 std::to_string(digits) + "-digit bit pattern such as 0x" +
                                 std::string(digits, '0'));
      p[i] = std::bit_cast<T>(static_cast<Bits>(std::stoull(s.substr(2), nullptr, 16)));
    } else {
      throw std::runtime_error(element() + " is " + v.type_name() + ", not a number");
    }
  }
  return t;
}

// ---- the archive checksum --------------------------------------------------------------
// CRC-32 of a canonical text of everything except the tensor data (which the tensors'
// own checksums cover): nlohmann's compact dump, whose object keys are sorted, of
// format, version, metadata and each tensor's name, dtype, shape and checksum. It is
// the same for the JSON and CBOR encodings of one archive.
json tensor_header(const std::string& name, DType dtype, const Shape& shape, std::uint32_t crc) {
  return json{{"name", name}, {"dtype", dtype_name(dtype)}, {"shape", shape}, {"checksum", crc}};
}

std::uint32_t archive_checksum(const json& metadata, const json& headers) {
  const json canonical{
      {"format", kFormatTag}, {"version", kVersion}, {"metadata", metadata}, {"tensors", headers}};
  // replace: CBOR carries byte strings that are not UTF-8; the checksum must not throw.
  const std::string text = canonical.dump(-1, ' ', false, json::error_handler_t::replace);
  return crc32_of(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

// ---- files ---------------------------------------------------------------------------
// Writes bytes to "<path>.tmp-<pid>", flushes them to disk, then renames over path.
// POSIX rename is atomic: a reader (or a crash) sees either the old file or the new.
void write_atomically(const std::string& path, const std::uint8_t* bytes, std::size_t n) {
  const std::string temp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("save_archive: cannot create temporary file '" + temp + "' for '" + path +
                             "': " + errno_text());
  auto fail = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::unlink(temp.c_str());
    throw std::runtime_error("save_archive: " + what + " ('" + path + "' is unchanged): " + reason);
  };
  std::size_t written = 0;
  while (written < n) {
    const ssize_t w = ::write(fd, bytes + written, n - written);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      fail("cannot write '" + temp + "'");
    }
    written += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    fail("cannot flush '" + temp + "' to disk");
  }
  if (::close(fd) != 0) fail("cannot close '" + temp + "'");
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot rename '" + temp + "' to '" + path + "'");
  // Make the rename itself durable. Best effort: the new file is already in place, and
  // some file systems refuse fsync on a directory.
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::vector<std::uint8_t> read_whole_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("load_archive: cannot open '" + path + "': " + errno_text());
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  std::size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = std::ferror(f) != 0;
  const std::string reason = errno_text();
  std::fclose(f);
  if (failed) throw std::runtime_error("load_archive: cannot read '" + path + "': " + reason);
  return bytes;
}

// Throws unless obj has exactly the keys in `keys` (no more, no fewer).
void require_exact_keys(const json& obj, std::initializer_list<const char*> keys, const std::string& where) {
  for (const char* k : keys)
    if (!obj.contains(k)) throw std::runtime_error(where + ": missing key '" + k + "'");
  for (const auto& [k, v] : obj.items())
    if (std::none_of(keys.begin(), keys.end(), [&](const char* allowed) { return k == allowed; }))
      throw std::runtime_error(where + ": unexpected key '" + k + "'");
}

std::uint32_t read_checksum(const json& v, const std::string& where) {
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() > 0xffffffffULL)
    throw std::runtime_error(where + ": checksum " + v.dump() + " is not a 32-bit unsigned number");
  return static_cast<std::uint32_t>(v.get<std::uint64_t>());
}

// One entry of "tensors", validated and decoded.
std::pair<std::string, Tensor> read_tensor(const json& entry, std::size_t index, const std::string& file) {
  std::string where = file + ": tensor #" + std::to_string(index);
  if (!entry.is_object()) throw std::runtime_error(where + " is " + entry.type_name() + ", not an object");
  // The name first, so that every later message can say which tensor is wrong.
  if (!entry.contains("name")) throw std::runtime_error(where + ": missing key 'name'");
  const json& name_json = entry["name"];
  if (!name_json.is_string() || name_json.get_ref<const std::string&>().empty())
    throw std::runtime_error(where + ": name " + name_json.dump() + " is not a non-empty string");
  const std::string name = name_json.get<std::string>();
  where = file + ": tensor '" + name + "'";
  require_exact_keys(entry, {"name", "dtype", "shape", "data", "checksum"}, where);

  const json& dtype_json = entry["dtype"];
  DType dtype;
  if (dtype_json == "float32")
    dtype = DType::f32;
  else if (dtype_json == "float64")
    dtype = DType::f64;
  else
    throw std::runtime_error(where + ": dtype " + dtype_json.dump() + " is not \"float32\" or \"float64\"");

  const json& shape_json = entry["shape"];
  if (!shape_json.is_array())
    throw std::runtime_error(where + ": shape is " + shape_json.type_name() + ", not a list");
  Shape shape;
  std::uint64_t numel = 1;
  constexpr std::uint64_t kMaxNumel = std::uint64_t{1} << 48;  // larger is corruption, and would overflow
  for (const json& d : shape_json) {
    if (!d.is_number_unsigned() || d.get<std::uint64_t>() > kMaxNumel)
      throw std::runtime_error(where + ": shape " + shape_json.dump() + " has an entry that is not a size");
    const std::uint64_t size = d.get<std::uint64_t>();
    numel = size == 0 ? 0 : (numel > kMaxNumel / size ? kMaxNumel + 1 : numel * size);
    shape.push_back(static_cast<std::int64_t>(size));
  }
  if (numel > kMaxNumel)
    throw std::runtime_error(where + ": shape " + shape_json.dump() + " is implausibly large");

  const std::uint32_t stored = read_checksum(entry["checksum"], where);
  const json& data = entry["data"];
  const std::size_t nbytes = static_cast<std::size_t>(numel) * dtype_size(dtype);
  Tensor t;
  std::uint32_t computed;
  if (data.is_binary()) {
    const auto& blob = data.get_binary();
    if (blob.size() != nbytes)
      throw std::runtime_error(where + ": data has " + std::to_string(blob.size()) + " bytes but shape " +
                               shape_str(shape) + " of " + dtype_name(dtype) + " needs " +
                               std::to_string(nbytes));
    computed = crc32_of(blob.data(), blob.size());
    if (computed == stored) t = tensor_from_little_endian(blob.data(), shape, dtype);
  } else if (data.is_array()) {
    if (data.size() != numel)
      throw std::runtime_error(where + ": data has " + std::to_string(data.size()) + " values but shape " +
                               shape_str(shape) + " needs " + std::to_string(numel));
    t = dtype == DType::f32 ? values_from_json<float, std::uint32_t>(data, shape, dtype, where)
                            : values_from_json<double, std::uint64_t>(data, shape, dtype, where);
    const std::vector<std::uint8_t> bytes = little_endian_bytes(t);
    computed = crc32_of(bytes.data(), bytes.size());
  } else {
    throw std::runtime_error(where + ": data is " + std::string(data.type_name()) +
                             ", expected a list of numbers or a byte string");
  }
  if (computed != stored)
    throw std::runtime_error(where + ": checksum mismatch (stored " + hex32(stored) + ", computed " +
                             hex32(computed) + "): the tensor's data is corrupted");
  return {name, t};
}
}  // namespace

Format format_for_path(const std::string& path) {
  std::string ext = path.size() >= 5 ? path.substr(path.size() - 5) : "";
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".json" ? Format::json : Format::cbor;
}

// ---- save --------------------------------------------------------------------------
void save_archive(const std::string& path, const Archive& a) {
  const std::string who = "save_archive: '" + path + "'";
  if (!a.metadata.is_null() && !a.metadata.is_object())
    throw std::invalid_argument(who + ": metadata must be a JSON object, got " + a.metadata.type_name());
  const json metadata = a.metadata.is_null() ? json::object() : a.metadata;
  const Format format = format_for_path(path);

  // ordered_json keeps the keys in the order a reader expects them in a .json file.
  nlohmann::ordered_json doc{{"format", kFormatTag}, {"version", kVersion}, {"metadata", metadata}};
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  json headers = json::array();
  std::set<std::string> seen;
  for (const auto& [name, t] : a.tensors) {
    if (name.empty()) throw std::invalid_argument(who + ": a tensor has an empty name");
    if (!seen.insert(name).second)
      throw std::invalid_argument(who + ": two tensors are named '" + name + "'");
    if (!t.defined()) throw std::invalid_argument(who + ": tensor '" + name + "' is undefined");
    std::vector<std::uint8_t> bytes = little_endian_bytes(t);
    const std::uint32_t crc = crc32_of(bytes.data(), bytes.size());
    nlohmann::ordered_json entry{{"name", name}, {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}};
    if (format == Format::json)
      entry["data"] = t.dtype() == DType::f32 ? values_to_json<float, std::uint32_t>(t)
                                              : values_to_json<double, std::uint64_t>(t);
    else
      entry["data"] = nlohmann::ordered_json::binary(std::move(bytes));
    entry["checksum"] = crc;
    entries.push_back(std::move(entry));
    headers.push_back(tensor_header(name, t.dtype(), t.shape(), crc));
  }
  doc["tensors"] = std::move(entries);
  doc["checksum"] = archive_checksum(metadata, headers);

  if (format == Format::json) {
    std::string text;
    try {
      text = doc.dump();
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(who + ": metadata cannot be written as JSON (" + e.what() + ")");
    }
    text += '\n';
    write_atomically(path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  } else {
    const std::vector<std::uint8_t> bytes = nlohmann::ordered_json::to_cbor(doc);
    write_atomically(path, bytes.data(), bytes.size());
  }
}

void save_state(const Module& m, const std::string& path, const nlohmann::json& metadata) {
  save_archive(path, Archive{metadata, m.named_state()});
}

// ---- load --------------------------------------------------------------------------
Archive load_archive(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_whole_file(path);
  const std::string where = "load_archive: '" + path + "'";
  const Format format = format_for_path(path);
  const char* format_name = format == Format::json ? "JSON" : "CBOR";
  if (bytes.empty()) throw std::runtime_error(where + ": the file is empty");

  json doc;
  try {
    doc = format == Format::json ? json::parse(bytes.begin(), bytes.end()) : json::from_cbor(bytes);
  } catch (const json::exception& e) {
    const std::string what = e.what();
    // A parse error at the very end of the bytes means the document stopped early.
    const auto* parse_error = dynamic_cast<const json::parse_error*>(&e);
    if (what.find("end of input") != std::string::npos || (parse_error && parse_error->byte >= bytes.size()))
      throw std::runtime_error(where + ": the file is truncated: its " + format_name +
                               " document ends early, after " + std::to_string(bytes.size()) + " bytes (" +
                               what + ")");
    throw std::runtime_error(where + ": not a valid " + format_name + " document, the file is corrupted (" +
                             what + ")");
  }

  if (!doc.is_object())
    throw std::runtime_error(where + ": the document is " + std::string(doc.type_name()) +
                             ", not an archive object");
  if (!doc.contains("format") || doc["format"] != kFormatTag)
    throw std::runtime_error(where + ": not a symgrad archive (format is " +
                             (doc.contains("format") ? doc["format"].dump() : std::string("missing")) +
                             ", expected \"" + kFormatTag + "\")");
  if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"] != kVersion)
    throw std::runtime_error(where + ": archive version " +
                             (doc.contains("version") ? doc["version"].dump() : std::string("missing")) +
                             " is not supported (this build of symgrad reads version " +
                             std::to_string(kVersion) + ")");
  require_exact_keys(doc, {"format", "version", "metadata", "tensors", "checksum"}, where);
  if (!doc["metadata"].is_object())
    throw std::runtime_error(where + ": metadata is " + std::string(doc["metadata"].type_name()) +
                             ", not an object");
  if (!doc["tensors"].is_array())
    throw std::runtime_error(where + ": tensors is " + std::string(doc["tensors"].type_name()) +
                             ", not a list");

  Archive archive;
  archive.metadata = doc["metadata"];
  json headers = json::array();
  std::set<std::string> seen;
  const json& entries = doc["tensors"];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto [name, t] = read_tensor(entries[i], i, where);
    if (!seen.insert(name).second) throw std::runtime_error(where + ": two tensors are named '" + name + "'");
    headers.push_back(
        tensor_header(name, t.dtype(), t.shape(), read_checksum(entries[i]["checksum"], where)));
    archive.tensors.emplace_back(std::move(name), std::move(t));
  }
  const std::uint32_t stored = read_checksum(doc["checksum"], where);
  const std::uint32_t computed = archive_checksum(archive.metadata, headers);
  if (stored != computed)
    throw std::runtime_error(where + ": archive checksum mismatch (stored " + hex32(stored) + ", computed " +
                             hex32(computed) + "): the metadata, a tensor name, dtype or shape is corrupted");
  return archive;
}

nlohmann::json load_state(Module& m, const std::string& path) {
  Archive archive = load_archive(path);
  const NamedTensors state = m.named_state();

  // Check everything first, then copy: a failed load must leave the model untouched.
  std::map<std::string, const Tensor*> in_file;
  for (const auto& [name, t] : archive.tensors) in_file.emplace(name, &t);
  std::vector<std::string> problems;
  std::set<std::string> in_model;
  for (const auto& [name, t] : state) {
    in_model.insert(name);
    auto it = in_file.find(name);
    if (it == in_file.end()) {
      problems.push_back("missing tensor '" + name + "' (" + shape_str(t.shape()) + " " +
                         dtype_name(t.dtype()) + " in the model, absent from the file)");
      continue;
    }
    const Tensor& saved = *it->second;
    if (saved.shape() != t.shape())
      problems.push_back("tensor '" + name + "' has shape " + shape_str(saved.shape()) + " in the file but " +
                         shape_str(t.shape()) + " in the model");
    else if (saved.dtype() != t.dtype())
      problems.push_back("tensor '" + name + "' is " + dtype_name(saved.dtype()) + " in the file but " +
                         dtype_name(t.dtype()) + " in the model; load_state does not convert: call " +
                         (saved.dtype() == DType::f32 ? "model.to(DType::f32)" : "model.to(DType::f64)") +
                         " before loading (Module::to)");
  }
  for (const auto& [name, t] : archive.tensors)
    if (!in_model.count(name))
      problems.push_back("unexpected tensor '" + name + "' (" + shape_str(t.shape()) +
                         " in the file; the model has no parameter or buffer of that name)");
  if (!problems.empty()) {
    std::string msg = "load_state: '" + path + "' does not match the model (" +
                      std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems") +
                      "; the model is unchanged):";
    for (const std::string& p : problems) msg += "\n  " + p;
    throw std::invalid_argument(msg);
  }

  NoGradGuard no_grad;
  for (const auto& [name, t] : state) {
    Tensor dst = t;
    copy_(dst, *in_file.at(name));
  }
  return archive.metadata;
}

}  // namespace symgrad::nn
