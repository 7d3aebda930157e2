#pragma once
// Raster images written with no imaging library: PNG (grey or RGB, 8 bits, deflate from
// zlib) for single frames, animated GIF (grey, LZW written here) for sequences such as
// the frames of a PDE flow. Files are written atomically (a temporary file renamed over
// the path), so a viewer refreshing one never sees half an image.
//
// Pixels are row-major bytes: grey images one byte per pixel, RGB three (r, g, b)
// interleaved, rows top to bottom.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad::nn {

// An 8-bit image: pixels.size() == height * width * channels, channels 1 (grey) or 3 (RGB).
struct Raster {
  std::int64_t height = 0, width = 0, channels = 1;
  std::vector<std::uint8_t> pixels;
};

// A float tensor whose shape is [H, W] after dropping leading size-1 axes (so [1, 1, H, W]
// frames work too) as a grey raster: low -> 0, high -> 255, linear in between, clamped,
// rounded to nearest; NaN -> 0. Throws std::invalid_argument on another shape or low >= high.
Raster to_raster(const Tensor& image, double low = 0.0, double high = 1.0);

// ---- PNG (ISO/IEC 15948): signature, IHDR, one IDAT (zlib stream of the rows, each
// preceded by filter type 0 "None"), IEND; each chunk with its CRC-32.
std::vector<std::uint8_t> encode_png(const Raster& image);
void write_png(const std::string& path, const Raster& image);
void write_png(const std::string& path, const Tensor& image, double low = 0.0, double high = 1.0);

// ---- GIF89a: a 256-level grey global palette, the NETSCAPE2.0 extension (loop forever),
// and per frame a graphic control extension (delay) and an LZW-compressed image.
// All frames are grey and of one size; delay is in hundredths of a second.
std::vector<std::uint8_t> encode_gif(const std::vector<Raster>& frames, int delay_centiseconds = 8);
void write_gif(const std::string& path, const std::vector<Raster>& frames, int delay_centiseconds = 8);
void write_gif(const std::string& path, const std::vector<Tensor>& frames, double low = 0.0, double high = 1.0,
               int delay_centiseconds = 8);

// GIF's variable-width LZW (codes of min_code_size + 1 up to 12 bits, clear code
// 2^min_code_size, end code one above, a clear code whenever the 4096-entry table fills),
// packed least significant bit first. Every index must be < 2^min_code_size; the result is
// the raw code stream, before the split into sub-blocks of at most 255 bytes.
std::vector<std::uint8_t> lzw_encode(const std::vector<std::uint8_t>& indices, int min_code_size);

}  // namespace symgrad::nn
