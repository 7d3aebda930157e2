#include "nn/train/raster.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace symgrad::nn {

namespace {

// ---- files ---------------------------------------------------------------------------
// Writes bytes to "<path>.tmp-<pid>", flushes them, then renames over path (POSIX rename
// is atomic: a reader sees the old file or the new one). On failure the temporary file is
// removed and path is left as it was.
void write_atomically(const char* who, const std::string& path, const std::vector<std::uint8_t>& bytes) {
  const std::string temp = path + ".tmp-" + std::to_string(::getpid());
  auto fail = [&](const std::string& what, int fd) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw std::runtime_error(std::string(who) + ": " + what + " ('" + path + "' is unchanged): " + reason);
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create temporary file '" + temp + "'", -1);
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("cannot write '" + temp + "'", fd);
    written += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) fail("cannot flush '" + temp + "' to disk", fd);
  if (::close(fd) != 0) fail("cannot close '" + temp + "'", -1);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot rename '" + temp + "' to '" + path + "'", -1);
}

void check_raster(const char* who, const Raster& image) {
  const bool sizes_ok = image.height >= 1 && image.width >= 1 && (image.channels == 1 || image.channels == 3);
  if (!sizes_ok || image.pixels.size() != static_cast<std::size_t>(image.height * image.width * image.channels))
    throw std::invalid_argument(std::string(who) + ": raster " + std::to_string(image.height) + " x " +
                                std::to_string(image.width) + " x " + std::to_string(image.channels) + " with " +
                                std::to_string(image.pixels.size()) +
                                " bytes (want height, width >= 1, channels 1 or 3, height * width * channels bytes)");
}

void put_u32_big_endian(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void put_u16_little_endian(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
  out.push_back(static_cast<std::uint8_t>((v >> 8) & 0xff));
}

// A PNG chunk: length, type, data, CRC-32 of type and data.
void put_png_chunk(std::vector<std::uint8_t>& out, const char type[4], const std::vector<std::uint8_t>& data) {
  put_u32_big_endian(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const uLong crc = ::crc32(::crc32(0L, Z_NULL, 0), out.data() + type_at, static_cast<uInt>(4 + data.size()));
  put_u32_big_endian(out, static_cast<std::uint32_t>(crc));
}

// LSB-first bit packing, as GIF's LZW wants it.
class BitWriter {
 public:
  void put(std::uint32_t code, int width) {
    buffer_ |= static_cast<std::uint64_t>(code) << filled_;
    filled_ += width;
    while (filled_ >= 8) {
      bytes_.push_back(static_cast<std::uint8_t>(buffer_ & 0xff));
      buffer_ >>= 8;
      filled_ -= 8;
    }
  }
  std::vector<std::uint8_t> finish() {
    if (filled_ > 0) bytes_.push_back(static_cast<std::uint8_t>(buffer_ & 0xff));
    buffer_ = 0;
    filled_ = 0;
    return std::move(bytes_);
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::uint64_t buffer_ = 0;
  int filled_ = 0;
};

}  // namespace

Raster to_raster(const Tensor& image, double low, double high) {
  Shape plane = image.shape();
  while (plane.size() > 2 && plane.front() == 1) plane.erase(plane.begin());
  if (plane.size() != 2)
    throw std::invalid_argument("to_raster: image " + shape_str(image.shape()) +
                                " must be [H, W] (possibly with leading size-1 axes)");
  if (!(low < high))
    throw std::invalid_argument("to_raster: value range [" + std::to_string(low) + ", " + std::to_string(high) +
                                "] is empty");
  Raster out{plane[0], plane[1], 1, {}};
  const std::vector<double> values = image.to_vector();
  out.pixels.reserve(values.size());
  for (double v : values) {
    const double level = std::round(255.0 * (v - low) / (high - low));
    out.pixels.push_back(std::isnan(level) ? 0 : static_cast<std::uint8_t>(std::fmin(255.0, std::fmax(0.0, level))));
  }
  return out;
}

// ---- PNG -------------------------------------------------------------------------------

std::vector<std::uint8_t> encode_png(const Raster& image) {
  check_raster("encode_png", image);
  std::vector<std::uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<std::uint8_t> header;
  put_u32_big_endian(header, static_cast<std::uint32_t>(image.width));
  put_u32_big_endian(header, static_cast<std::uint32_t>(image.height));
  // bit depth 8; colour type 0 (grey) or 2 (RGB); compression, filter method 0; no interlace.
  header.insert(header.end(), {8, static_cast<std::uint8_t>(image.channels == 1 ? 0 : 2), 0, 0, 0});
  put_png_chunk(out, "IHDR", header);

  const std::size_t row_bytes = static_cast<std::size_t>(image.width * image.channels);
  std::vector<std::uint8_t> rows;
  rows.reserve(static_cast<std::size_t>(image.height) * (row_bytes + 1));
  for (std::int64_t r = 0; r < image.height; ++r) {
    rows.push_back(0);  // filter "None": our images are small, simplicity wins over size
    const auto* row = image.pixels.data() + static_cast<std::size_t>(r) * row_bytes;
    rows.insert(rows.end(), row, row + row_bytes);
  }
  uLongf packed_size = ::compressBound(static_cast<uLong>(rows.size()));
  std::vector<std::uint8_t> packed(packed_size);
  if (::compress2(packed.data(), &packed_size, rows.data(), static_cast<uLong>(rows.size()), Z_BEST_COMPRESSION) !=
      Z_OK)
    throw std::runtime_error("encode_png: zlib could not compress " + std::to_string(rows.size()) + " bytes");
  packed.resize(packed_size);
  put_png_chunk(out, "IDAT", packed);
  put_png_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, const Raster& image) { write_atomically("write_png", path, encode_png(image)); }

void write_png(const std::string& path, const Tensor& image, double low, double high) {
  write_png(path, to_raster(image, low, high));
}

// ---- GIF -------------------------------------------------------------------------------

std::vector<std::uint8_t> lzw_encode(const std::vector<std::uint8_t>& indices, int min_code_size) {
  if (min_code_size < 2 || min_code_size > 8)
    throw std::invalid_argument("lzw_encode: min_code_size " + std::to_string(min_code_size) + " must be in [2, 8]");
  const std::uint32_t clear_code = 1u << min_code_size, end_code = clear_code + 1;
  constexpr std::uint32_t kTableSize = 4096;  // codes are at most 12 bits
  // The table maps (prefix code, next index) to the code of that string.
  std::unordered_map<std::uint32_t, std::uint32_t> table;
  std::uint32_t next_code = end_code + 1;
  int width = min_code_size + 1;
  auto reset = [&] {
    table.clear();
    next_code = end_code + 1;
    width = min_code_size + 1;
  };
  BitWriter bits;
  bits.put(clear_code, width);
  if (indices.empty()) {
    bits.put(end_code, width);
    return bits.finish();
  }
  for (std::uint8_t v : indices)
    if (v >= clear_code)
      throw std::invalid_argument("lzw_encode: index " + std::to_string(v) + " does not fit min_code_size " +
                                  std::to_string(min_code_size));
  std::uint32_t prefix = indices[0];
  for (std::size_t i = 1; i < indices.size(); ++i) {
    const std::uint32_t key = (prefix << 8) | indices[i];
    if (const auto found = table.find(key); found != table.end()) {
      prefix = found->second;
      continue;
    }
    bits.put(prefix, width);
    if (next_code < kTableSize) {
      table.emplace(key, next_code);
      // The decoder adds this entry one code later, and widens its codes when its next
      // free code reaches 2^width; so the width grows here as soon as the code just
      // assigned no longer fits.
      if (next_code == (1u << width) && width < 12) ++width;
      ++next_code;
    } else {
      bits.put(clear_code, width);  // table full: start again
      reset();
    }
    prefix = indices[i];
  }
  bits.put(prefix, width);
  // The decoder adds an entry for this last code too (the encoder has nothing left to
  // add), so it reads the end code one bit wider if that entry would need it.
  if (next_code == (1u << width) && width < 12) ++width;
  bits.put(end_code, width);
  return bits.finish();
}

std::vector<std::uint8_t> encode_gif(const std::vector<Raster>& frames, int delay_centiseconds) {
  if (frames.empty()) throw std::invalid_argument("encode_gif: no frames");
  if (delay_centiseconds < 0 || delay_centiseconds > 65535)
    throw std::invalid_argument("encode_gif: delay " + std::to_string(delay_centiseconds) +
                                " must be in [0, 65535] hundredths of a second");
  const std::int64_t height = frames[0].height, width = frames[0].width;
  for (std::size_t f = 0; f < frames.size(); ++f) {
    check_raster("encode_gif", frames[f]);
    if (frames[f].channels != 1 || frames[f].height != height || frames[f].width != width)
      throw std::invalid_argument("encode_gif: frame " + std::to_string(f) + " is " +
                                  std::to_string(frames[f].height) + " x " + std::to_string(frames[f].width) + " x " +
                                  std::to_string(frames[f].channels) + ", expected grey " + std::to_string(height) +
                                  " x " + std::to_string(width) + " like frame 0");
  }
  if (height > 65535 || width > 65535)
    throw std::invalid_argument("encode_gif: " + std::to_string(height) + " x " + std::to_string(width) +
                                " exceeds GIF's 65535 x 65535");

  std::vector<std::uint8_t> out{'G', 'I', 'F', '8', '9', 'a'};
  put_u16_little_endian(out, static_cast<std::uint32_t>(width));
  put_u16_little_endian(out, static_cast<std::uint32_t>(height));
  // Global colour table present, 8 bits of colour resolution, 2^(7+1) = 256 entries.
  out.insert(out.end(), {0xf7, 0, 0});
  for (int level = 0; level < 256; ++level) out.insert(out.end(), 3, static_cast<std::uint8_t>(level));
  // NETSCAPE2.0 application extension: loop count 0 = forever.
  out.insert(out.end(), {0x21, 0xff, 11, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0', 3, 1, 0, 0, 0});

  for (const Raster& frame : frames) {
    // Graphic control extension: no disposal, no transparency, the delay.
    out.insert(out.end(), {0x21, 0xf9, 4, 0});
    put_u16_little_endian(out, static_cast<std::uint32_t>(delay_centiseconds));
    out.insert(out.end(), {0, 0});
    // Image descriptor: the whole screen, no local palette, not interlaced.
    out.push_back(0x2c);
    put_u16_little_endian(out, 0);
    put_u16_little_endian(out, 0);
    put_u16_little_endian(out, static_cast<std::uint32_t>(width));
    put_u16_little_endian(out, static_cast<std::uint32_t>(height));
    out.push_back(0);
    constexpr int kMinCodeSize = 8;  // indices are grey levels 0..255
    out.push_back(kMinCodeSize);
    const std::vector<std::uint8_t> codes = lzw_encode(frame.pixels, kMinCodeSize);
    for (std::size_t at = 0; at < codes.size(); at += 255) {
      const std::size_t n = std::min<std::size_t>(255, codes.size() - at);
      out.push_back(static_cast<std::uint8_t>(n));
      out.insert(out.end(), codes.begin() + static_cast<std::ptrdiff_t>(at),
                 codes.begin() + static_cast<std::ptrdiff_t>(at + n));
    }
    out.push_back(0);  // end of the image's sub-blocks
  }
  out.push_back(0x3b);  // trailer
  return out;
}

void write_gif(const std::string& path, const std::vector<Raster>& frames, int delay_centiseconds) {
  write_atomically("write_gif", path, encode_gif(frames, delay_centiseconds));
}

void write_gif(const std::string& path, const std::vector<Tensor>& frames, double low, double high,
               int delay_centiseconds) {
  std::vector<Raster> rasters;
  rasters.reserve(frames.size());
  for (const Tensor& frame : frames) rasters.push_back(to_raster(frame, low, high));
  write_gif(path, rasters, delay_centiseconds);
}

}  // namespace symgrad::nn
