#pragma once
// IDX files, the format MNIST and Fashion-MNIST are distributed in: a 4-byte magic
// (0x00 0x00, an element-type byte, the rank), one big-endian uint32 per dimension,
// then the elements in row-major order, big-endian. Files are often gzip-compressed
// (.gz); read_idx() recognises gzip by its first two bytes (1f 8b) and reads either.
#include <cstdint>
#include <string>
#include <vector>

namespace symgrad::nn {

enum class IdxType : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

const char* idx_type_name(IdxType type);  // "u8", "i8", "i16", "i32", "f32", "f64"
std::size_t idx_type_size(IdxType type);  // bytes per element

struct IdxArray {
  IdxType type = IdxType::u8;
  std::vector<std::int64_t> dims;
  // u8 elements stay bytes (60000 images take 47 MB, not 376 MB as doubles); every
  // other type is held as double, which represents each of them exactly.
  std::vector<std::uint8_t> bytes;  // type == u8
  std::vector<double> values;       // every other type
  std::int64_t numel() const;       // product of dims
};

// Reads an IDX file, plain or gzip-compressed. Throws std::runtime_error naming the
// path and the problem: unreadable, not IDX (foreign magic), unknown element type,
// truncated (header, payload or gzip stream), or bytes left after the payload.
IdxArray read_idx(const std::string& path);

// Writes a as an IDX file, gzip-compressed if `gzip`. Throws std::invalid_argument if
// the values do not fill dims or do not fit the element type, std::runtime_error
// (naming the path and the system's reason) if the file cannot be written.
void write_idx(const std::string& path, const IdxArray& a, bool gzip = false);

}  // namespace symgrad::nn
