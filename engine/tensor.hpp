#pragma once
// Tensor: a shared handle to a dense, row-major block of float32 or float64 numbers,
// plus what autograd needs to know about where it came from.
//
// Design decision: every tensor is contiguous. slice, transpose and permute copy
// instead of returning strided views. The copies cost memory bandwidth, but in
// exchange every kernel sees one dense layout (simple SIMD loops, one reference loop
// per op), and autograd never has to reason about two tensors aliasing one buffer
// (no view rebasing; one version counter per buffer catches in-place writes). matmul avoids the one copy that
// would matter, the transpose in its backward, by handing transpose flags to BLAS.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.hpp"
#include "engine/shape.hpp"

namespace symgrad {

struct Node;

// A tensor's buffer, shared between a tensor and its detached copies. Up to 64 bytes
// live inside the Storage object itself (one allocation fewer for scalars and tiny
// tensors); larger buffers come from engine/allocator.hpp. Every buffer has
// kTailPadding readable bytes past its end, so a SIMD kernel may load a whole vector
// at the tail of the last row (the lanes past the end are never used).
class Storage {
 public:
  explicit Storage(std::size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  // Counts in-place writes (engine/inplace.hpp). Autograd remembers a leaf's version
  // when an op records it and refuses to run backward if it changed since: the
  // gradient would be computed with the old values but applied to the new ones.
  std::uint64_t version() const { return version_; }
  void bump_version() { ++version_; }
  void set_version(std::uint64_t v) { version_ = v; }

 private:
  static constexpr std::size_t kTailPadding = 64;
  static constexpr std::size_t kInlineBytes = 64 + kTailPadding;
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  std::uint64_t version_ = 0;
  alignas(16) unsigned char inline_[kInlineBytes];
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;         // null for leaves
  std::shared_ptr<TensorImpl> grad;      // accumulated by backward() on leaves
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (used for "no gradient")
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised memory of the given shape; ops fill it.
  static Tensor empty(const Shape& shape, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  std::int64_t size(std::int64_t axis) const;  // negative axes count from the end
  std::int64_t numel() const;
  DType dtype() const;

  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  // Autograd state.
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // leaves only
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor grad() const;        // undefined until backward() reached this leaf
  void set_grad(const Tensor& g);
  void zero_grad();           // drops the accumulated gradient
  Tensor detach() const;      // same storage, no history

  // Values.
  double item() const;                    // one-element tensors only
  std::vector<double> to_vector() const;  // any dtype, converted to double
  template <class T> std::vector<T> values() const;  // exact dtype required
  std::string to_string() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace symgrad
