// IDX reading and writing: hand-made bytes decode to hand-computed values, every element
// type round-trips plain and gzip-compressed, and damaged or foreign files are refused
// with a message that says what is wrong.
#include "nn/data/idx.hpp"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad::nn;
namespace fs = std::filesystem;

namespace {
using symgrad::testing::TempDir;
using symgrad::testing::read_bytes;
using symgrad::testing::write_bytes;
IdxArray make(IdxType type, std::vector<std::int64_t> dims, std::vector<double> values) {
  IdxArray a;
  a.type = type;
  a.dims = std::move(dims);
  if (type == IdxType::u8)
    a.bytes.assign(values.begin(), values.end());
  else
    a.values = std::move(values);
  return a;
}

// Equal values, NaN equal to NaN (bit patterns of NaN are not part of the contract).
bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (a[i] != b[i] || std::signbit(a[i]) != std::signbit(b[i])) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("read_idx decodes hand-written big-endian bytes") {
  TempDir dir("idx");
  // i16, dims 2x3: 0x0102 = 258, 0xfffe = -2, 0x8000 = -32768, 0x7fff = 32767, 0, 1.
  write_bytes(dir.file("a.idx"), {0x00, 0x00, 0x0b, 0x02, 0,    0,    0,    2,    0,    0,    0,    3,  //
                                  0x01, 0x02, 0xff, 0xfe, 0x80, 0x00, 0x7f, 0xff, 0x00, 0x00, 0x00, 0x01});
  IdxArray a = read_idx(dir.file("a.idx"));
  CHECK(a.type == IdxType::i16);
  CHECK(a.dims == std::vector<std::int64_t>{2, 3});
  CHECK(a.values == std::vector<double>{258, -2, -32768, 32767, 0, 1});
  CHECK(a.bytes.empty());

  // u8, dims 1x2x2 (the MNIST image layout), kept as bytes.
  write_bytes(dir.file("b.idx"), {0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 127, 128, 255});
  IdxArray b = read_idx(dir.file("b.idx"));
  CHECK(b.type == IdxType::u8);
  CHECK(b.dims == std::vector<std::int64_t>{1, 2, 2});
  CHECK(b.bytes == std::vector<std::uint8_t>{0, 127, 128, 255});
  CHECK(b.values.empty());

  // f32 1.5 = 0x3fc00000, -2 = 0xc0000000; i32 -1 and 0x01020304; i8 0xff = -1; f64 0.1.
  write_bytes(dir.file("c.idx"), {0, 0, 0x0d, 1, 0, 0, 0, 2, 0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0});
  CHECK(read_idx(dir.file("c.idx")).values == std::vector<double>{1.5, -2.0});
  write_bytes(dir.file("d.idx"), {0, 0, 0x0c, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4});
  CHECK(read_idx(dir.file("d.idx")).values == std::vector<double>{-1, 16909060});
  write_bytes(dir.file("e.idx"), {0, 0, 0x09, 1, 0, 0, 0, 2, 0xff, 0x7f});
  CHECK(read_idx(dir.file("e.idx")).values == std::vector<double>{-1, 127});
  write_bytes(dir.file("f.idx"), {0, 0, 0x0e, 1, 0, 0, 0, 1, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a});
  CHECK(read_idx(dir.file("f.idx")).values == std::vector<double>{0.1});
}

TEST_CASE("write_idx then read_idx round-trips every type, plain and gzip") {
  TempDir dir("idx");
  using F = std::numeric_limits<float>;
  using D = std::numeric_limits<double>;
  const std::vector<std::pair<IdxType, std::vector<double>>> cases{
      {IdxType::u8, {0, 1, 127, 128, 200, 255}},
      {IdxType::i8, {-128, -1, 0, 1, 100, 127}},
      {IdxType::i16, {-32768, -300, 0, 5, 1000, 32767}},
      {IdxType::i32, {-2147483648.0, -70000, 0, 1, 65536, 2147483647.0}},
      {IdxType::f32,
       {static_cast<double>(0.1f), -0.0, F::infinity(), static_cast<double>(F::denorm_min()),
        static_cast<double>(F::max()), D::quiet_NaN()}},
      {IdxType::f64, {0.1, -0.0, -D::infinity(), D::denorm_min(), D::max(), D::quiet_NaN()}},
  };
  for (const auto& [type, values] : cases) {
    for (bool gzip : {false, true}) {
      INFO(idx_type_name(type) << (gzip ? " gzip" : " plain"));
      const std::string path = dir.file(std::string(idx_type_name(type)) + (gzip ? ".idx.gz" : ".idx"));
      write_idx(path, make(type, {3, 2}, values), gzip);
      const auto bytes = read_bytes(path);
      REQUIRE(bytes.size() >= 4);
      if (gzip) {
        CHECK((bytes[0] == 0x1f && bytes[1] == 0x8b));
      } else {
        CHECK(bytes == [&] {  // header, then the payload size the type implies
          std::vector<std::uint8_t> h{0, 0, static_cast<std::uint8_t>(type), 2, 0, 0, 0, 3, 0, 0, 0, 2};
          h.resize(12 + 6 * idx_type_size(type));
          std::copy(bytes.begin() + 12, bytes.end(), h.begin() + 12);
          return h;
        }());
      }
      IdxArray back = read_idx(path);
      CHECK(back.type == type);
      CHECK(back.dims == std::vector<std::int64_t>{3, 2});
      CHECK(back.numel() == 6);
      if (type == IdxType::u8)
        CHECK(back.bytes == std::vector<std::uint8_t>(values.begin(), values.end()));
      else
        CHECK(same_values(back.values, values));
    }
  }
  // Empty arrays are legal IDX.
  write_idx(dir.file("empty.idx.gz"), make(IdxType::u8, {0, 28, 28}, {}), true);
  IdxArray empty = read_idx(dir.file("empty.idx.gz"));
  CHECK(empty.dims == std::vector<std::int64_t>{0, 28, 28});
  CHECK(empty.bytes.empty());
}

TEST_CASE("read_idx refuses truncated, foreign and over-long files") {
  TempDir dir("idx");
  const std::string path = dir.file("x.idx");
  write_idx(path, make(IdxType::u8, {4, 2, 2}, std::vector<double>(16, 7)));
  const auto good = read_bytes(path);

  SECTION("truncated payload names the shape, the sizes and the path") {
    write_bytes(path, std::vector<std::uint8_t>(good.begin(), good.end() - 1));
    CHECK_THROWS_WITH(
        read_idx(path),
        "read_idx: " + path + ": file is truncated: header says 4x2x2 = 16 bytes of u8, found 15");
    write_idx(path, make(IdxType::i16, {2, 3}, {1, 2, 3, 4, 5, 6}));
    auto i16 = read_bytes(path);
    i16.resize(i16.size() - 2);
    write_bytes(path, i16);
    CHECK_THROWS_WITH(read_idx(path),
                      Catch::Contains("header says 2x3 = 6 values of i16 = 12 bytes, found 10"));
  }
  SECTION("truncated header") {
    write_bytes(path, std::vector<std::uint8_t>(good.begin(), good.begin() + 9));
    CHECK_THROWS_WITH(read_idx(path),
                      Catch::Contains("truncated: the header of a rank-3 IDX file takes 16 bytes, found 9"));
    write_bytes(path, {0, 0});
    CHECK_THROWS_WITH(read_idx(path), Catch::Contains("truncated: 2 bytes"));
    write_bytes(path, {});
    CHECK_THROWS_WITH(read_idx(path), Catch::Contains("truncated: 0 bytes"));
  }
  SECTION("truncated or corrupted gzip stream") {
    const std::string gz = dir.file("x.idx.gz");
    IdxArray big = make(IdxType::u8, {64, 64}, {});
    for (int i = 0; i < 64 * 64; ++i) big.bytes.push_back(static_cast<std::uint8_t>((i * 37) % 251));
    write_idx(gz, big, true);
    const auto compressed = read_bytes(gz);
    write_bytes(
        gz, std::vector<std::uint8_t>(
                compressed.begin(), compressed.begin() + static_cast<std::ptrdiff_t>(compressed.size() / 2)));
    CHECK_THROWS_WITH(read_idx(gz), Catch::Contains(gz) && Catch::Contains("truncated"));
    auto damaged = compressed;
    damaged[damaged.size() - 6] ^= 0xff;  // the CRC-32 in gzip's trailer
    write_bytes(gz, damaged);
    CHECK_THROWS_WITH(read_idx(gz), Catch::Contains(gz) && Catch::Contains("gzip data is corrupted"));
  }
  SECTION("foreign files and unknown types") {
    write_bytes(path, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
    CHECK_THROWS_WITH(read_idx(path), Catch::Contains(path) &&
                                          Catch::Contains("not an IDX file: it starts with 68 65 6c 6c"));
    write_bytes(path, {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a});
    CHECK_THROWS_WITH(read_idx(path), Catch::Contains("not an IDX file"));
    write_bytes(path, {0, 0, 0x0a, 1, 0, 0, 0, 1, 0});
    CHECK_THROWS_WITH(read_idx(path), Catch::Contains("unknown IDX element type 0a"));
    write_bytes(path, {0, 0, 0x08, 0});
    CHECK_THROWS_WITH(read_idx(path), Catch::Contains("not an IDX file"));
    CHECK_THROWS_WITH(read_idx(dir.file("missing.idx")),
                      Catch::Contains("cannot open: No such file or directory"));
  }
  SECTION("bytes after the payload") {
    auto longer = good;
    longer.insert(longer.end(), {1, 2, 3});
    write_bytes(path, longer);
    CHECK_THROWS_WITH(
        read_idx(path),
        Catch::Contains("3 unexpected bytes after the data (header says 4x2x2 = 16 bytes of u8, found 19)"));
  }
}

TEST_CASE("write_idx refuses values that do not fit the type or the shape") {
  TempDir dir("idx");
  const std::string path = dir.file("w.idx");
  CHECK_THROWS_WITH(write_idx(path, make(IdxType::i8, {2}, {1, 200})),
                    Catch::Contains("value 200") && Catch::Contains("does not fit i8"));
  CHECK_THROWS_WITH(write_idx(path, make(IdxType::i16, {2}, {1.5, 2})), Catch::Contains("does not fit i16"));
  CHECK_THROWS_WITH(write_idx(path, make(IdxType::f32, {1}, {1e300})), Catch::Contains("does not fit f32"));
  CHECK_THROWS_WITH(write_idx(path, make(IdxType::u8, {2, 2}, {1, 2, 3})),
                    Catch::Contains("dims 2x2 hold 4 u8 values but bytes has 3"));
  CHECK_THROWS_WITH(write_idx(path, make(IdxType::u8, {}, {})), Catch::Contains("rank 0"));
  CHECK_THROWS_WITH(write_idx(dir.file("no/such/dir.idx"), make(IdxType::u8, {1}, {1})),
                    Catch::Contains("cannot create: No such file or directory"));
  CHECK_FALSE(fs::exists(path));
}
