// Archives: bit-exact round trips in JSON and CBOR, every kind of damaged file refused
// with a message naming the file and the tensor, all-or-nothing load_state, atomic saves.
#include "nn/serialize.hpp"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
using symgrad::testing::TempDir;
using symgrad::testing::read_bytes;
using symgrad::testing::write_bytes;
// Two parameters and a buffer; nested in Outer so that names are dotted.
class Tiny : public Module {
 public:
  Tiny(DType dtype, std::uint64_t seed, std::int64_t width = 4) {
    Generator gen(seed);
    weight = register_parameter("weight", uniform({3, width}, -1.0, 1.0, gen, dtype));
    bias = register_parameter("bias", uniform({width}, -1.0, 1.0, gen, dtype));
    steps = register_buffer("steps", full({1}, static_cast<double>(seed), dtype));
  }
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Tiny"; }
  Tensor weight, bias, steps;
};

class Outer : public Module {
 public:
  explicit Outer(DType dtype = DType::f32, std::uint64_t seed = 1, std::int64_t width = 4) {
    Generator gen(seed + 100);
    scale = register_parameter("scale", uniform({2}, 0.5, 2.0, gen, dtype));
    inner = register_module("inner", std::make_shared<Tiny>(dtype, seed, width));
  }
  Tensor forward(const Tensor& x) override { return inner->forward(x); }
  std::string type_name() const override { return "Outer"; }
  Tensor scale;
  std::shared_ptr<Tiny> inner;
};

std::vector<std::uint8_t> raw(const Tensor& t) {
  const auto* p = static_cast<const std::uint8_t*>(t.raw_data());
  return {p, p + t.numel() * static_cast<std::int64_t>(dtype_size(t.dtype()))};
}

// Every state tensor's bytes, to compare models bit for bit.
std::vector<std::vector<std::uint8_t>> snapshot(const Module& m) {
  std::vector<std::vector<std::uint8_t>> out;
  for (auto& [name, t] : m.named_state()) out.push_back(raw(t));
  return out;
}

// Values that test exactness: non-finite ones (with a NaN payload), signed zero,
// subnormals, extremes, and fractions with no short decimal form.
template <class T>
void set_special_values(Tensor t) {
  using L = std::numeric_limits<T>;
  std::vector<T> v{L::quiet_NaN(), L::infinity(), -L::infinity(), T(-0.0),     L::denorm_min(), L::min(),
                   L::max(),       L::lowest(),   T(0.1),         T(1) / T(3), T(-2.5e-7),      T(12345.678)};
  if constexpr (std::is_same_v<T, float>)
    v[0] = std::bit_cast<float>(0x7fc01234u);  // NaN payload
  else
    v[0] = std::bit_cast<double>(0xfff8000000abcdefULL);  // negative NaN payload
  REQUIRE(t.numel() == static_cast<std::int64_t>(v.size()));
  std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(T));
}

bool contains(const std::vector<std::uint8_t>& hay, const std::vector<std::uint8_t>& needle,
              std::size_t* at) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  if (it == hay.end()) return false;
  *at = static_cast<std::size_t>(it - hay.begin());
  return true;
}

// Rewrites a saved JSON archive through a function of its document (checksums untouched).
template <class Edit>
void edit_json_file(const std::string& path, Edit edit) {
  std::ifstream in(path);
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(in);
  edit(doc);
  std::ofstream(path, std::ios::trunc) << doc.dump();
}
}  // namespace

TEST_CASE("format_for_path picks JSON by extension, CBOR otherwise") {
  CHECK(format_for_path("model.json") == Format::json);
  CHECK(format_for_path("/a/b/MODEL.JSON") == Format::json);
  CHECK(format_for_path("model.cbor") == Format::cbor);
  CHECK(format_for_path("model") == Format::cbor);
  CHECK(format_for_path("json") == Format::cbor);
}

TEST_CASE("save_state / load_state round-trip bit for bit in JSON and CBOR, float32 and float64") {
  TempDir dir("serialize");
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const char* name : {"model.json", "model.cbor"}) {
      INFO(dtype_name(dtype) << " " << name);
      Outer saved(dtype, 1, 4);
      dispatch_dtype(dtype, [&](auto zero) { set_special_values<decltype(zero)>(saved.inner->weight); });
      const json metadata{{"epoch", 7}, {"lr", 0.001}, {"note", "bits"}, {"arch", {{"layers", {1, 2}}}}};
      const std::string path = dir.file(name);
      save_state(saved, path, metadata);

      Outer loaded(dtype, 2, 4);  // different values, same structure
      REQUIRE(snapshot(loaded) != snapshot(saved));
      const json got = load_state(loaded, path);
      CHECK(got == metadata);
      CHECK(snapshot(loaded) == snapshot(saved));
      CHECK(loaded.inner->weight.requires_grad());  // still the same parameter handles
      CHECK(dir.files_containing(".tmp-").empty());
    }
  }
}

TEST_CASE("load_archive returns names in order, dtypes, shapes and metadata") {
  TempDir dir("serialize");
  Generator gen(3);
  Archive a{json{{"step", 12}},
            {{"b.second", uniform({2, 0, 3}, -1, 1, gen, DType::f64)},
             {"a.first", uniform({5}, -1, 1, gen, DType::f32)},
             {"scalar", scalar(4.5, DType::f64)}}};
  for (const char* name : {"state.json", "state.bin"}) {
    const std::string path = dir.file(name);
    save_archive(path, a);
    Archive back = load_archive(path);
    CHECK(back.metadata == a.metadata);
    REQUIRE(back.tensors.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(back.tensors[i].first == a.tensors[i].first);
      CHECK(back.tensors[i].second.shape() == a.tensors[i].second.shape());
      CHECK(back.tensors[i].second.dtype() == a.tensors[i].second.dtype());
      CHECK(raw(back.tensors[i].second) == raw(a.tensors[i].second));
    }
  }
  // Null metadata is saved as an empty object; the JSON file is readable text.
  save_archive(dir.file("empty.json"), Archive{});
  CHECK(load_archive(dir.file("empty.json")).metadata == json::object());
  const auto text = read_bytes(dir.file("empty.json"));
  CHECK(std::string(text.begin(), text.end()).find("{\"format\":\"symgrad.archive\",\"version\":1") == 0);
}

TEST_CASE("CBOR stores raw bytes; JSON stores numbers and non-finite values as bit patterns") {
  TempDir dir("serialize");
  Tensor t = zeros({12}, DType::f32);
  set_special_values<float>(t);
  save_archive(dir.file("t.cbor"), Archive{{}, {{"t", t}}});
  save_archive(dir.file("t.json"), Archive{{}, {{"t", t}}});
  std::size_t at = 0;
  CHECK(contains(read_bytes(dir.file("t.cbor")), raw(t), &at));  // little-endian host
  CHECK(read_bytes(dir.file("t.cbor")).size() < 48 + 150);
  const json doc = json::parse(std::ifstream(dir.file("t.json")));
  const json& data = doc["tensors"][0]["data"];
  CHECK(data[0] == "0x7fc01234");
  CHECK(data[1] == "0x7f800000");
  CHECK(data[8] == static_cast<double>(0.1f));
}

TEST_CASE("damaged files are refused with the file, the tensor and the reason") {
  TempDir dir("serialize");
  Outer model(DType::f64, 1);
  const auto before = snapshot(model);
  auto refused = [&](const std::string& path, const std::string& reason) {
    INFO("path " << path);
    CHECK_THROWS_WITH(load_state(model, path), Catch::Contains(path) && Catch::Contains(reason));
    CHECK(snapshot(model) == before);  // all or nothing
  };
  Outer source(DType::f64, 9);
  const std::string json_path = dir.file("good.json"), cbor_path = dir.file("good.cbor");
  save_state(source, json_path, {{"epoch", 3}});
  save_state(source, cbor_path, {{"epoch", 3}});
  const auto json_bytes = read_bytes(json_path), cbor_bytes = read_bytes(cbor_path);

  SECTION("missing and empty files") {
    refused(dir.file("nope.cbor"), "No such file or directory");
    write_bytes(dir.file("empty.cbor"), {});
    refused(dir.file("empty.cbor"), "empty");
  }
  SECTION("truncated at several lengths") {
    for (const auto& [path, bytes] : {std::pair{json_path, json_bytes}, std::pair{cbor_path, cbor_bytes}}) {
      // A JSON file's last byte is its newline, so cut at least two.
      for (std::size_t keep :
           {std::size_t{1}, std::size_t{10}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 2}) {
        const std::string cut = path + ".cut" + (format_for_path(path) == Format::json ? ".json" : "");
        write_bytes(
            cut, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
        INFO("kept " << keep << " of " << bytes.size());
        refused(cut, "truncated");
      }
    }
  }
  SECTION("a flipped byte inside a tensor's data names the tensor") {
    // CBOR: the raw bytes of inner.bias appear verbatim in the file.
    std::size_t at = 0;
    REQUIRE(contains(cbor_bytes, raw(source.inner->bias), &at));
    auto bad = cbor_bytes;
    bad[at + 13] ^= 0x40;
    write_bytes(cbor_path, bad);
    refused(cbor_path, "tensor 'inner.bias': checksum mismatch");
    // JSON: change a digit in the middle of inner.weight's numbers.
    const std::string text(json_bytes.begin(), json_bytes.end());
    const std::size_t data = text.find("\"data\":[", text.find("\"name\":\"inner.weight\""));
    REQUIRE(data != std::string::npos);
    std::size_t digit = text.find_first_of("0123456789", data + 8) + 5;
    while (!std::isdigit(static_cast<unsigned char>(text[digit]))) ++digit;
    auto bad_json = json_bytes;
    bad_json[digit] = bad_json[digit] == '5' ? '6' : '5';
    write_bytes(json_path, bad_json);
    refused(json_path, "tensor 'inner.weight': checksum mismatch");
  }
  SECTION("every single flipped byte of a CBOR archive is caught") {
    for (std::size_t i = 0; i < cbor_bytes.size(); ++i) {
      auto bad = cbor_bytes;
      bad[i] ^= 0x01;
      write_bytes(cbor_path, bad);
      INFO("flipped byte " << i << " of " << cbor_bytes.size());
      CHECK_THROWS_WITH(load_state(model, cbor_path), Catch::Contains(cbor_path));
    }
    CHECK(snapshot(model) == before);
  }
  SECTION("bad JSON and bad CBOR") {
    auto bad = json_bytes;
    bad[0] = 'x';
    write_bytes(json_path, bad);
    refused(json_path, "not a valid JSON document");
    write_bytes(cbor_path, {0xff, 0xfe, 0x00, 0x01});
    refused(cbor_path, "not a valid CBOR document");
  }
  SECTION("wrong format tag or version") {
    edit_json_file(json_path, [](auto& doc) { doc["format"] = "torch.state_dict"; });
    refused(json_path, "not a symgrad archive (format is \"torch.state_dict\"");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["version"] = 2; });
    refused(json_path, "archive version 2 is not supported");
  }
  SECTION("missing and unexpected keys") {
    edit_json_file(json_path, [](auto& doc) { doc.erase("metadata"); });
    refused(json_path, "missing key 'metadata'");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["extra"] = 1; });
    refused(json_path, "unexpected key 'extra'");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][1]["grad"] = 0; });
    refused(json_path, "tensor 'inner.weight': unexpected key 'grad'");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][2].erase("checksum"); });
    refused(json_path, "tensor 'inner.bias': missing key 'checksum'");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][2].erase("name"); });
    refused(json_path, "tensor #2: missing key 'name'");
  }
  SECTION("data whose length does not match the shape") {
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][1]["data"].erase(0); });
    refused(json_path, "tensor 'inner.weight': data has 11 values but shape [3, 4] needs 12");
    // CBOR: the blob is one byte short.
    json doc = json::from_cbor(cbor_bytes);
    doc["tensors"][2]["data"].get_binary().pop_back();
    write_bytes(cbor_path, json::to_cbor(doc));
    refused(cbor_path, "tensor 'inner.bias': data has 31 bytes but shape [4] of float64 needs 32");
    // Bad dtype and shape entries.
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["dtype"] = "int8"; });
    refused(json_path, "tensor 'scale': dtype \"int8\" is not");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["shape"] = {-2}; });
    refused(json_path, "tensor 'scale': shape [-2] has an entry that is not a size");
  }
  SECTION("checksums") {
    edit_json_file(json_path, [](auto& doc) { doc["metadata"]["epoch"] = 4; });
    refused(json_path, "archive checksum mismatch");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["name"] = "scalf"; });
    refused(json_path, "archive checksum mismatch");
    save_state(source, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["data"][1] = 0.25; });
    refused(json_path, "tensor 'scale': checksum mismatch");
  }
  SECTION("a float32 tensor whose JSON numbers are not float32 values") {
    Outer f32(DType::f32, 1);
    save_state(f32, json_path);
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["data"][0] = 0.1; });
    CHECK_THROWS_WITH(load_archive(json_path),
                      Catch::Contains("tensor 'scale': element 0 (0.1) is not a float32 value"));
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["data"][0] = 1e300; });
    CHECK_THROWS_WITH(load_archive(json_path), Catch::Contains("is not a float32 value"));
    edit_json_file(json_path, [](auto& doc) { doc["tensors"][0]["data"][0] = "0x7fc"; });
    CHECK_THROWS_WITH(load_archive(json_path), Catch::Contains("element 0 is the string '0x7fc'"));
  }
}

TEST_CASE("load_state refuses a file that does not fit the model and leaves it unchanged") {
  TempDir dir("serialize");
  const std::string path = dir.file("model.cbor");
  Outer model(DType::f32, 1, 4);
  const auto before = snapshot(model);

  Outer wider(DType::f32, 5, 6);
  save_state(wider, path);
  CHECK_THROWS_WITH(
      load_state(model, path),
      Catch::Contains(path) && Catch::Contains("the model is unchanged") &&
          Catch::Contains("tensor 'inner.weight' has shape [3, 6] in the file but [3, 4] in the model") &&
          Catch::Contains("tensor 'inner.bias' has shape [6]"));
  CHECK(snapshot(model) == before);

  Outer doubles(DType::f64, 5, 4);
  save_state(doubles, path);
  CHECK_THROWS_WITH(load_state(model, path),
                    Catch::Contains("tensor 'scale' is float64 in the file but float32 in the model") &&
                        Catch::Contains("model.to(DType::f64)") && Catch::Contains("Module::to"));
  CHECK(snapshot(model) == before);
  model.to(DType::f64);  // the remedy the message names
  load_state(model, path);
  CHECK(snapshot(model) == snapshot(doubles));
  model.to(DType::f32);
  const auto reference = snapshot(model);

  // Missing and unexpected tensors: a plain Tiny has no 'scale' and no 'inner.' prefix.
  Tiny tiny(DType::f32, 3);
  save_state(tiny, path);
  CHECK_THROWS_WITH(load_state(model, path), Catch::Contains("missing tensor 'scale'") &&
                                                 Catch::Contains("missing tensor 'inner.steps'") &&
                                                 Catch::Contains("unexpected tensor 'weight'") &&
                                                 Catch::Contains("7 problems"));
  CHECK(snapshot(model) == reference);
}

TEST_CASE("a failed save keeps the previous file and leaves no temporary file behind") {
  TempDir dir("serialize");
  const std::string path = dir.file("model.cbor");
  Outer first(DType::f32, 1), second(DType::f32, 2);
  save_state(first, path, {{"which", "first"}});
  const auto old_bytes = read_bytes(path);
  auto unchanged = [&] {
    CHECK(read_bytes(path) == old_bytes);
    CHECK(dir.files_containing(".tmp-").empty());
    Outer probe(DType::f32, 3);
    CHECK(load_state(probe, path) == json{{"which", "first"}});
  };

  SECTION("the temporary file cannot be created") {
    const std::string temp = path + ".tmp-" + std::to_string(::getpid());
    fs::create_directory(temp);  // open() of a directory for writing fails
    CHECK_THROWS_WITH(
        save_state(second, path),
        Catch::Contains("cannot create temporary file '" + temp + "'") && Catch::Contains("Is a directory"));
    CHECK(fs::is_directory(temp));  // not ours to remove
    fs::remove(temp);
    unchanged();
  }
  SECTION("the rename fails") {
    const std::string target = dir.file("a_directory");
    fs::create_directory(target);
    CHECK_THROWS_WITH(save_state(second, target),
                      Catch::Contains("cannot rename") && Catch::Contains(target));
    CHECK(fs::is_directory(target));
    fs::remove(target);
    unchanged();
  }
  SECTION("the archive is invalid") {
    CHECK_THROWS_WITH(save_archive(path, Archive{{}, {{"w", Tensor()}}}),
                      Catch::Contains("tensor 'w' is undefined"));
    CHECK_THROWS_WITH(save_archive(path, Archive{{}, {{"w", zeros({1})}, {"w", zeros({2})}}}),
                      Catch::Contains("two tensors are named 'w'"));
    CHECK_THROWS_WITH(save_archive(path, Archive{{}, {{"", zeros({1})}}}), Catch::Contains("empty name"));
    CHECK_THROWS_WITH(save_state(second, path, json::array({1, 2})),
                      Catch::Contains("metadata must be a JSON object"));
    unchanged();
  }
  SECTION("metadata that JSON cannot hold") {
    const std::string json_path = dir.file("model.json");
    save_state(first, json_path);
    const auto json_old = read_bytes(json_path);
    CHECK_THROWS_WITH(save_state(second, json_path, {{"name", std::string("\xff\xfe")}}),
                      Catch::Contains("cannot be written as JSON"));
    CHECK(read_bytes(json_path) == json_old);
    unchanged();
  }
}
