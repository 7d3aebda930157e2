// PNG and GIF writers, read back by independent decoders written here: PNG chunks are
// walked and their CRCs recomputed, the IDAT stream is inflated with zlib and the rows
// compared with the pixels; the GIF's header, palette, loop extension, frame delays and
// trailer are parsed, and every frame's LZW stream is decoded by a decoder in this file.
// Also the float -> byte mapping, LZW round trips that widen codes up to 12 bits and
// reset the table, atomic writes that leave the old file on failure, and errors.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "nn/train/raster.hpp"
#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;

namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint32_t big_endian_u32(const Bytes& b, std::size_t at) {
  return (std::uint32_t{b.at(at)} << 24) | (std::uint32_t{b.at(at + 1)} << 16) | (std::uint32_t{b.at(at + 2)} << 8) |
         b.at(at + 3);
}

std::uint32_t little_endian_u16(const Bytes& b, std::size_t at) { return b.at(at) | (std::uint32_t{b.at(at + 1)} << 8); }

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// ---- a PNG reader for what encode_png writes (8-bit grey/RGB, filter 0) ----------------
struct Png {
  std::vector<std::string> chunk_types;
  std::uint32_t width = 0, height = 0;
  int bit_depth = 0, colour_type = -1;
  Bytes pixels;
};

Png read_png(const Bytes& file) {
  const Bytes signature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  REQUIRE(Bytes(file.begin(), file.begin() + 8) == signature);
  Png png;
  Bytes compressed;
  std::size_t at = 8;
  while (at < file.size()) {
    const std::uint32_t length = big_endian_u32(file, at);
    const std::string type(file.begin() + static_cast<std::ptrdiff_t>(at + 4), file.begin() + static_cast<std::ptrdiff_t>(at + 8));
    const std::uint8_t* data = file.data() + at + 8;
    const uLong crc = ::crc32(::crc32(0L, Z_NULL, 0), file.data() + at + 4, length + 4);
    INFO("chunk " << type);
    REQUIRE(big_endian_u32(file, at + 8 + length) == crc);
    png.chunk_types.push_back(type);
    if (type == "IHDR") {
      REQUIRE(length == 13);
      png.width = big_endian_u32(file, at + 8);
      png.height = big_endian_u32(file, at + 12);
      png.bit_depth = data[8];
      png.colour_type = data[9];
      REQUIRE(data[10] == 0);  // compression
      REQUIRE(data[11] == 0);  // filter method
      REQUIRE(data[12] == 0);  // no interlace
    } else if (type == "IDAT") {
      compressed.insert(compressed.end(), data, data + length);
    }
    at += 12 + length;
  }
  REQUIRE(at == file.size());
  const std::size_t channels = png.colour_type == 2 ? 3 : 1;
  const std::size_t row_bytes = png.width * channels;
  Bytes rows(png.height * (row_bytes + 1));
  uLongf size = rows.size();
  REQUIRE(::uncompress(rows.data(), &size, compressed.data(), compressed.size()) == Z_OK);
  REQUIRE(size == rows.size());
  for (std::size_t r = 0; r < png.height; ++r) {
    REQUIRE(rows[r * (row_bytes + 1)] == 0);  // filter type None
    png.pixels.insert(png.pixels.end(), rows.begin() + static_cast<std::ptrdiff_t>(r * (row_bytes + 1) + 1),
                      rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * (row_bytes + 1)));
  }
  return png;
}

// ---- a GIF LZW decoder (the textbook one, written independently of the encoder) -------
Bytes lzw_decode(const Bytes& stream, int min_code_size) {
  const std::uint32_t clear = 1u << min_code_size, end = clear + 1;
  std::vector<Bytes> table;
  int width = 0;
  auto reset = [&] {
    table.assign(clear + 2, {});
    for (std::uint32_t i = 0; i < clear; ++i) table[i] = {static_cast<std::uint8_t>(i)};
    width = min_code_size + 1;
  };
  reset();
  std::size_t bit = 0;
  auto read_code = [&] {
    std::uint32_t code = 0;
    for (int i = 0; i < width; ++i, ++bit) {
      REQUIRE(bit / 8 < stream.size());  // ran out of data before the end code
      code |= static_cast<std::uint32_t>((stream[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return code;
  };
  Bytes out;
  bool have_previous = false;
  std::uint32_t previous = 0;
  for (;;) {
    const std::uint32_t code = read_code();
    if (code == clear) {
      reset();
      have_previous = false;
      continue;
    }
    if (code == end) break;
    Bytes entry;
    if (code < table.size() && (code < clear || code > end)) {
      entry = table[code];
    } else {
      REQUIRE(have_previous);
      REQUIRE(code == table.size());  // the one code not yet in the table: previous + its first byte
      entry = table[previous];
      entry.push_back(table[previous][0]);
    }
    out.insert(out.end(), entry.begin(), entry.end());
    if (have_previous && table.size() < 4096) {
      Bytes added = table[previous];
      added.push_back(entry[0]);
      table.push_back(added);
      if (table.size() == (1u << width) && width < 12) ++width;
    }
    previous = code;
    have_previous = true;
  }
  REQUIRE((bit + 7) / 8 == stream.size());  // nothing after the end code but padding
  return out;
}

struct Gif {
  std::uint32_t width = 0, height = 0;
  bool loops = false;
  std::vector<std::uint32_t> delays;
  std::vector<Bytes> frames;
};

Gif read_gif(const Bytes& file) {
  REQUIRE(std::string(file.begin(), file.begin() + 6) == "GIF89a");
  Gif gif;
  gif.width = little_endian_u16(file, 6);
  gif.height = little_endian_u16(file, 8);
  REQUIRE(file.at(10) == 0xf7);  // global 256-entry palette
  for (int level = 0; level < 256; ++level)
    for (int k = 0; k < 3; ++k) REQUIRE(file.at(13 + static_cast<std::size_t>(3 * level + k)) == level);
  std::size_t at = 13 + 768;
  auto sub_blocks = [&] {
    Bytes data;
    while (file.at(at) != 0) {
      const std::size_t n = file.at(at);
      data.insert(data.end(), file.begin() + static_cast<std::ptrdiff_t>(at + 1),
                  file.begin() + static_cast<std::ptrdiff_t>(at + 1 + n));
      at += 1 + n;
    }
    ++at;
    return data;
  };
  for (;;) {
    const std::uint8_t introducer = file.at(at);
    if (introducer == 0x3b) {
      REQUIRE(at + 1 == file.size());  // the trailer is the last byte
      break;
    }
    if (introducer == 0x21 && file.at(at + 1) == 0xff) {
      REQUIRE(std::string(file.begin() + static_cast<std::ptrdiff_t>(at + 3), file.begin() + static_cast<std::ptrdiff_t>(at + 14)) ==
              "NETSCAPE2.0");
      at += 14;
      const Bytes loop = sub_blocks();
      gif.loops = loop.size() == 3 && loop[0] == 1 && loop[1] == 0 && loop[2] == 0;
    } else if (introducer == 0x21 && file.at(at + 1) == 0xf9) {
      REQUIRE(file.at(at + 2) == 4);
      gif.delays.push_back(little_endian_u16(file, at + 4));
      at += 2;
      sub_blocks();
    } else if (introducer == 0x2c) {
      REQUIRE(little_endian_u16(file, at + 5) == gif.width);
      REQUIRE(little_endian_u16(file, at + 7) == gif.height);
      REQUIRE(file.at(at + 9) == 0);  // no local palette, not interlaced
      const int min_code_size = file.at(at + 10);
      at += 11;
      gif.frames.push_back(lzw_decode(sub_blocks(), min_code_size));
    } else {
      FAIL("unexpected GIF block " << int(introducer) << " at byte " << at);
    }
  }
  return gif;
}

Raster gradient_raster(std::int64_t height, std::int64_t width, std::int64_t channels) {
  Raster r{height, width, channels, {}};
  for (std::int64_t i = 0; i < height * width * channels; ++i) r.pixels.push_back(static_cast<std::uint8_t>((i * 37 + i / 7) % 256));
  return r;
}

}  // namespace

TEST_CASE("to_raster maps a value range to 0..255, clamped and rounded", "[raster]") {
  const Tensor t = from_vector(std::vector<double>{-1.0, 0.0, 0.5, 1.0, 2.0, NAN, 0.25, 0.75}, {1, 1, 2, 4});
  const Raster r = to_raster(t, 0.0, 1.0);
  CHECK(r.height == 2);
  CHECK(r.width == 4);
  CHECK(r.pixels == Bytes{0, 0, 128, 255, 255, 0, 64, 191});
  CHECK(to_raster(t, -1.0, 3.0).pixels[0] == 0);
  CHECK(to_raster(t, -1.0, 3.0).pixels[4] == 191);  // 2 -> 255 * 3/4 = 191.25
  REQUIRE_THROWS_WITH(to_raster(zeros({2, 2, 2}), 0, 1), Catch::Contains("[2, 2, 2]"));
  REQUIRE_THROWS_WITH(to_raster(zeros({2, 2}), 1, 1), Catch::Contains("empty"));
}

TEST_CASE("PNG: signature, IHDR, CRCs, IEND, and the inflated rows are the pixels", "[raster][png]") {
  for (std::int64_t channels : {1, 3}) {
    INFO("channels " << channels);
    const Raster image = gradient_raster(5, 7, channels);
    const Png png = read_png(encode_png(image));
    CHECK(png.chunk_types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
    CHECK(png.width == 7);
    CHECK(png.height == 5);
    CHECK(png.bit_depth == 8);
    CHECK(png.colour_type == (channels == 1 ? 0 : 2));
    CHECK(png.pixels == image.pixels);
  }
  // A damaged byte makes the CRC check fail: the reader above is not vacuous.
  Bytes file = encode_png(gradient_raster(2, 2, 1));
  const uLong crc_before = ::crc32(::crc32(0L, Z_NULL, 0), file.data() + 12, 17);
  file[20] ^= 1;
  CHECK(::crc32(::crc32(0L, Z_NULL, 0), file.data() + 12, 17) != crc_before);
}

TEST_CASE("write_png writes the encoding to disk, also from a tensor", "[raster][png]") {
  const std::string dir = symgrad::testing::temp_dir("raster_png");
  const Raster image = gradient_raster(3, 4, 1);
  write_png(dir + "/a.png", image);
  CHECK(read_bytes(dir + "/a.png") == encode_png(image));
  const Tensor t = from_vector(std::vector<double>{0, 10, 20, 30, 40, 50}, {2, 3});
  write_png(dir + "/b.png", t, 0.0, 50.0);
  const Png png = read_png(read_bytes(dir + "/b.png"));
  CHECK(png.pixels == Bytes{0, 51, 102, 153, 204, 255});
  // Only the two files: no temporary left behind.
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("LZW round-trips through an independent decoder, through code widening and table resets", "[raster][lzw]") {
  Generator gen(5);
  SECTION("random bytes fill the 4096-entry table several times") {
    const std::vector<double> noise = uniform({20000}, 0, 256, gen, DType::f64).to_vector();
    Bytes data;
    for (double v : noise) data.push_back(static_cast<std::uint8_t>(v));
    CHECK(lzw_decode(lzw_encode(data, 8), 8) == data);
  }
  SECTION("long runs make long strings (and the code-not-yet-in-table case)") {
    const Bytes data(5000, 7);
    const Bytes codes = lzw_encode(data, 8);
    CHECK(codes.size() < 200);
    CHECK(lzw_decode(codes, 8) == data);
  }
  SECTION("every minimum code size, small alphabets") {
    for (int bits = 2; bits <= 8; ++bits) {
      INFO("min code size " << bits);
      const std::vector<double> noise = uniform({6000}, 0, std::pow(2.0, bits), gen, DType::f64).to_vector();
      Bytes data;
      for (double v : noise) data.push_back(static_cast<std::uint8_t>(v));
      CHECK(lzw_decode(lzw_encode(data, bits), bits) == data);
    }
  }
  SECTION("empty and single-pixel inputs") {
    CHECK(lzw_decode(lzw_encode({}, 8), 8).empty());
    CHECK(lzw_decode(lzw_encode({200}, 8), 8) == Bytes{200});
  }
  REQUIRE_THROWS_WITH(lzw_encode({4}, 2), Catch::Contains("index 4"));
  REQUIRE_THROWS_WITH(lzw_encode({0}, 9), Catch::Contains("min_code_size 9"));
}

TEST_CASE("GIF: header, palette, loop extension, delays, frames and trailer", "[raster][gif]") {
  std::vector<Raster> frames;
  for (int f = 0; f < 3; ++f) {
    Raster r = gradient_raster(9, 11, 1);
    for (auto& p : r.pixels) p = static_cast<std::uint8_t>(p + 40 * f);
    frames.push_back(r);
  }
  const Gif gif = read_gif(encode_gif(frames, 12));
  CHECK(gif.width == 11);
  CHECK(gif.height == 9);
  CHECK(gif.loops);
  CHECK(gif.delays == std::vector<std::uint32_t>{12, 12, 12});
  REQUIRE(gif.frames.size() == 3);
  for (int f = 0; f < 3; ++f) CHECK(gif.frames[static_cast<std::size_t>(f)] == frames[static_cast<std::size_t>(f)].pixels);

  // A frame large enough for several 255-byte sub-blocks and table resets, from tensors.
  const std::string dir = symgrad::testing::temp_dir("raster_gif");
  Generator gen(9);
  const Tensor noise = uniform({1, 1, 64, 80}, 0, 1, gen, DType::f64);
  write_gif(dir + "/noise.gif", std::vector<Tensor>{noise, 1.0 - noise}, 0.0, 1.0, 5);
  const Gif back = read_gif(read_bytes(dir + "/noise.gif"));
  REQUIRE(back.frames.size() == 2);
  CHECK(back.frames[0] == to_raster(noise).pixels);
  CHECK(back.frames[1] == to_raster(1.0 - noise).pixels);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a failed write leaves the old file as it was and no temporary behind", "[raster][atomic]") {
  const std::string dir = symgrad::testing::temp_dir("raster_atomic");
  const Raster image = gradient_raster(2, 3, 1);
  SECTION("the temporary file cannot be created (its name is too long)") {
    // 250 characters is a valid name, but with ".tmp-<pid>" appended it exceeds NAME_MAX
    // (255), so the write fails before the old file could be touched -- also as root,
    // who ignores directory permissions.
    const std::string path = dir + "/" + std::string(250, 'a');
    { std::ofstream(path) << "old contents"; }
    REQUIRE_THROWS_WITH(write_png(path, image), Catch::Contains("write_png") && Catch::Contains("unchanged"));
    CHECK(symgrad::testing::read_text(path) == "old contents");
    REQUIRE_THROWS_WITH(write_gif(path, std::vector<Raster>{image}), Catch::Contains("write_gif"));
    CHECK(symgrad::testing::read_text(path) == "old contents");
  }
  SECTION("the rename fails (the path is a non-empty directory)") {
    const std::string path = dir + "/occupied.png";
    std::filesystem::create_directories(path);
    { std::ofstream(path + "/keep") << "kept"; }
    REQUIRE_THROWS_WITH(write_png(path, image), Catch::Contains("cannot rename"));
    CHECK(symgrad::testing::read_text(path + "/keep") == "kept");
  }
  SECTION("the directory does not exist") {
    REQUIRE_THROWS_AS(write_png(dir + "/missing/x.png", image), std::runtime_error);
  }
  // Whatever failed, only what the test created is left.
  std::size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    INFO(entry.path().string());
    CHECK(entry.path().string().find(".tmp-") == std::string::npos);
    ++entries;
  }
  CHECK(entries <= 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("raster errors name the function and the sizes", "[raster][errors]") {
  REQUIRE_THROWS_WITH(encode_png(Raster{2, 2, 1, Bytes(3)}), Catch::Contains("encode_png") && Catch::Contains("3 bytes"));
  REQUIRE_THROWS_WITH(encode_png(Raster{2, 2, 2, Bytes(8)}), Catch::Contains("channels 1 or 3"));
  REQUIRE_THROWS_WITH(encode_gif({}), Catch::Contains("no frames"));
  REQUIRE_THROWS_WITH(encode_gif({gradient_raster(2, 2, 1), gradient_raster(2, 3, 1)}),
                      Catch::Contains("frame 1") && Catch::Contains("2 x 3"));
  REQUIRE_THROWS_WITH(encode_gif({gradient_raster(2, 2, 3)}), Catch::Contains("grey"));
  REQUIRE_THROWS_WITH(encode_gif({gradient_raster(2, 2, 1)}, -1), Catch::Contains("delay -1"));
}
