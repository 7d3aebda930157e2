#pragma once
// Saving and loading named tensors (a model's parameters and buffers, an optimizer's
// state) with a JSON metadata object, in one of two encodings of the same document:
//
//   {"format": "symgrad.archive", "version": 1, "metadata": {...},
//    "tensors": [{"name": "0.weight", "dtype": "float32", "shape": [256, 784],
//                 "data": ..., "checksum": <CRC-32 of the raw little-endian bytes>}, ...],
//    "checksum": <CRC-32 of the archive's canonical content>}
//
// JSON (readable, diffable): "data" is a list of numbers printed so that they read back
// bit for bit. CBOR (compact, the default): "data" is a byte string of the raw
// little-endian values. Non-finite values, which JSON has no numbers for, are written
// in JSON as strings of their bit pattern ("0x7fc00000") so that they survive exactly.
//
// The archive checksum covers what the per-tensor checksums do not -- format, version,
// metadata, names, dtypes and shapes -- so a flipped byte anywhere is caught: either the
// parser rejects it, or a checksum names the tensor (or the archive) it broke. (In JSON,
// a changed last digit can still read back as the same number; such a flip changes no
// value and goes unreported.)
//
// Saving is atomic: the document goes to "<path>.tmp-<pid>", is flushed to disk, then
// renamed over <path>. A crash or error mid-save leaves the previous file as it was.
// Loading validates everything before returning, and load_state() checks every tensor
// against the model before it copies any: a failed load leaves the model untouched.
#include <nlohmann/json.hpp>
#include <string>

#include "nn/module.hpp"

namespace symgrad::nn {

enum class Format { json, cbor };

// ".json" (any case) -> json; anything else -> cbor.
Format format_for_path(const std::string& path);

struct Archive {
  nlohmann::json metadata;  // an object (null is saved as {})
  NamedTensors tensors;     // unique, non-empty names; defined tensors
};

// Writes the archive in format_for_path(path). Throws std::invalid_argument for a bad
// archive (nothing is written) and std::runtime_error, naming the path and the system's
// reason, when the file cannot be written (the previous file is kept).
void save_archive(const std::string& path, const Archive& a);

// Reads and validates an archive; throws std::runtime_error naming the file, the
// tensor and the reason for anything wrong (truncation, corruption, bad checksum,
// unknown format or version, unexpected keys, data that does not fill its shape).
Archive load_archive(const std::string& path);

// A module's named_state() (parameters then buffers) plus metadata.
void save_state(const Module& m, const std::string& path, const nlohmann::json& metadata = {});

// Loads named_state() from path, all or nothing: every tensor in the file must match a
// tensor of the model by name, shape and dtype, and vice versa. Returns the metadata.
// A dtype mismatch is refused (convert the model with Module::to() first).
nlohmann::json load_state(Module& m, const std::string& path);

}  // namespace symgrad::nn
