#include "lowbit/compress/sparse_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/numerics/packing.h"

namespace lowbit {

namespace {

constexpr const char* kWhere = "sparse tensor";

std::string str(int64_t v) { return std::to_string(v); }
std::string at(int64_t r, int64_t c) { return "row " + str(r) + ", column " + str(c); }

SparseLayoutSpec layout_of(const SparsityPattern& pattern) {
  pattern.validate();
  SparseLayoutSpec layout;
  if (pattern.nm()) {
    layout.n = pattern.n;
    layout.m = pattern.m;
  }
  return layout;
}

// N:M: every group keeps exactly min(n, width) slots — the kept positions, then the lowest pruned
// ones as padding. Throws when a group keeps more.
void fill_slots(std::vector<uint8_t>& mask, int64_t rows, int64_t cols, const SparseLayoutSpec& layout) {
  if (layout.bitmap()) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c0 = 0; c0 < cols; c0 += layout.m) {
      const int64_t width = std::min<int64_t>(layout.m, cols - c0), slots = std::min<int64_t>(layout.n, width);
      uint8_t* group = mask.data() + r * cols + c0;
      int64_t kept = 0;
      for (int64_t i = 0; i < width; ++i) kept += group[i] != 0;
      require(kept <= slots, kWhere,
              at(r, c0) + ": the group keeps " + str(kept) + " weights, " + layout.to_string() + " allows " + str(slots));
      for (int64_t i = 0; i < width && kept < slots; ++i)
        if (!group[i]) group[i] = 1, ++kept;
    }
}

void check_sizes(size_t size, int64_t rows, int64_t cols, const char* what) {
  require(rows >= 0 && cols >= 0, kWhere, "negative size " + str(rows) + "x" + str(cols));
  require(size == static_cast<size_t>(rows) * static_cast<size_t>(cols), kWhere,
          std::string(what) + " has " + std::to_string(size) + " entries, expected " + str(rows) + "x" + str(cols));
}

float round_to(DType dtype, float v) {
  switch (dtype) {
    case DType::kF32: return v;
    case DType::kF16: return f16_bits_to_f32(f32_to_f16_bits(v));
    case DType::kBF16: return bf16_bits_to_f32(f32_to_bf16_bits(v));
    default: throw Error(kWhere, "float values must be F32, F16 or BF16, found " + std::string(dtype_name(dtype)));
  }
}

void put_value(DType dtype, float v, uint8_t* out) {
  if (dtype == DType::kF32) {
    std::memcpy(out, &v, 4);
    return;
  }
  const uint16_t bits = dtype == DType::kF16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
  std::memcpy(out, &bits, 2);
}

float get_value(DType dtype, const uint8_t* in) {
  if (dtype == DType::kF32) {
    float v;
    std::memcpy(&v, in, 4);
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, in, 2);
  return dtype == DType::kF16 ? f16_bits_to_f32(bits) : bf16_bits_to_f32(bits);
}

}  // namespace

SparseTensor SparseTensor::from_float(std::span<const float> weight, std::vector<uint8_t> mask, int64_t rows,
                                      int64_t cols, const SparsityPattern& pattern, DType value_dtype) {
  check_sizes(weight.size(), rows, cols, "the weight");
  check_sizes(mask.size(), rows, cols, "the mask");
  SparseTensor t;
  t.rows_ = rows;
  t.cols_ = cols;
  t.layout_ = layout_of(pattern);
  t.value_dtype_ = value_dtype;
  (void)round_to(value_dtype, 0.0f);  // refuses other dtypes
  fill_slots(mask, rows, cols, t.layout_);
  t.values_.resize(weight.size());
  for (size_t i = 0; i < weight.size(); ++i) {
    require(std::isfinite(weight[i]), kWhere,
            at(static_cast<int64_t>(i) / cols, static_cast<int64_t>(i) % cols) + ": weight is not finite");
    t.values_[i] = mask[i] ? round_to(value_dtype, weight[i]) : 0.0f;
  }
  t.mask_ = std::move(mask);
  return t;
}

SparseTensor SparseTensor::from_quantized(QuantizedTensor tensor, std::vector<uint8_t> mask,
                                          const SparsityPattern& pattern) {
  const int64_t rows = tensor.rows(), cols = tensor.cols();
  check_sizes(mask.size(), rows, cols, "the mask");
  require(tensor.g_idx().empty(), kWhere, "sparse quantized layers have consecutive groups (no g_idx, no act-order)");
  require(!tensor.scheme().has_tensor_scale(), kWhere,
          "sparse quantized layers store no tensor scale: use f16, bf16, f32 or e8m0 scales, not NVFP4's ue4m3");
  SparseTensor t;
  t.rows_ = rows;
  t.cols_ = cols;
  t.layout_ = layout_of(pattern);
  fill_slots(mask, rows, cols, t.layout_);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    tensor.dequantize_row(r, row);
    for (int64_t c = 0; c < cols; ++c)
      require(mask[static_cast<size_t>(r * cols + c)] || row[static_cast<size_t>(c)] == 0.0f, kWhere,
              at(r, c) + ": a pruned weight decodes to " + std::to_string(row[static_cast<size_t>(c)]) + ", not 0");
  }
  t.quantized_ = std::move(tensor);
  t.mask_ = std::move(mask);
  return t;
}

const QuantizedTensor& SparseTensor::quantized_tensor() const {
  require(quantized_.has_value(), kWhere, "the values are floats, not quantized");
  return *quantized_;
}

std::vector<float> SparseTensor::dense() const { return quantized_ ? quantized_->dequantize() : values_; }

QuantizedLayerSpec SparseTensor::spec() const {
  QuantizedLayerSpec spec;
  spec.in_features = cols_;
  spec.out_features = rows_;
  spec.sparse = layout_;
  if (quantized_) {
    spec.format = quantized_->scheme().element;
    spec.group_size = quantized_->scheme().group_size;
    spec.scale_dtype = quantized_->scheme().scale_dtype;
  } else {
    spec.quantized = false;
    spec.value_dtype = value_dtype_;
  }
  return spec;
}

std::vector<uint8_t> SparseTensor::stored_index() const {
  if (layout_.bitmap()) {
    const int64_t row_bytes = (cols_ + 7) / 8;
    std::vector<uint8_t> bitmap(static_cast<size_t>(rows_ * row_bytes), 0);
    for (int64_t r = 0; r < rows_; ++r)
      for (int64_t c = 0; c < cols_; ++c)
        if (mask_[static_cast<size_t>(r * cols_ + c)]) bitmap[static_cast<size_t>(r * row_bytes + c / 8)] |= static_cast<uint8_t>(1u << (c % 8));
    return bitmap;
  }
  const int64_t slots = layout_.slots(cols_);
  const size_t row_bytes = packed_bytes(static_cast<size_t>(slots), layout_.index_bits());
  std::vector<uint8_t> index(static_cast<size_t>(rows_) * row_bytes), positions;
  for (int64_t r = 0; r < rows_; ++r) {
    positions.clear();
    for (int64_t c = 0; c < cols_; ++c)
      if (mask_[static_cast<size_t>(r * cols_ + c)]) positions.push_back(static_cast<uint8_t>(c % layout_.m));
    pack_bits(positions, layout_.index_bits(), std::span(index).subspan(static_cast<size_t>(r) * row_bytes, row_bytes));
  }
  return index;
}

std::vector<uint8_t> SparseTensor::stored_values() const {
  std::vector<uint8_t> out;
  if (!quantized_) {
    const size_t width = dtype_size(value_dtype_);
    for (int64_t i = 0; i < rows_ * cols_; ++i)
      if (mask_[static_cast<size_t>(i)]) {
        out.resize(out.size() + width);
        put_value(value_dtype_, values_[static_cast<size_t>(i)], out.data() + out.size() - width);
      }
    return out;
  }
  std::vector<uint8_t> codes(static_cast<size_t>(cols_)), kept;
  for (int64_t r = 0; r < rows_; ++r) {
    quantized_->codes_of_row(r, codes);
    kept.clear();
    for (int64_t c = 0; c < cols_; ++c)
      if (mask_[static_cast<size_t>(r * cols_ + c)]) kept.push_back(codes[static_cast<size_t>(c)]);
    const std::vector<uint8_t> packed = pack_bits(kept, quantized_->bits());
    out.insert(out.end(), packed.begin(), packed.end());
  }
  return out;
}

int64_t SparseTensor::storage_bytes() const {
  // Counted from the layout, without packing it (stored_index / stored_values build the bytes).
  const int64_t index_row = layout_.bitmap() ? (cols_ + 7) / 8
                                             : static_cast<int64_t>(packed_bytes(static_cast<size_t>(layout_.slots(cols_)),
                                                                                 layout_.index_bits()));
  int64_t bytes = rows_ * index_row;
  if (!quantized_) {
    int64_t kept = 0;
    for (uint8_t k : mask_) kept += k;
    return bytes + kept * static_cast<int64_t>(dtype_size(value_dtype_));
  }
  const QuantizedTensor& q = *quantized_;
  for (int64_t r = 0; r < rows_; ++r) {
    size_t kept = 0;
    for (int64_t c = 0; c < cols_; ++c) kept += mask_[static_cast<size_t>(r * cols_ + c)];
    bytes += static_cast<int64_t>(packed_bytes(kept, q.bits()));  // each row's codes start on a byte
  }
  bytes += q.rows() * q.groups_per_row() * static_cast<int64_t>(dtype_size(q.scheme().scale_dtype));
  if (q.scheme().asymmetric())
    bytes += q.rows() * static_cast<int64_t>(packed_bytes(static_cast<size_t>(q.groups_per_row()), q.bits()));
  return bytes;
}

double SparseTensor::bits_per_weight() const {
  return rows_ * cols_ > 0 ? 8.0 * static_cast<double>(storage_bytes()) / static_cast<double>(rows_ * cols_) : 0.0;
}

SparseTensor SparseTensor::from_stored(const QuantizedLayerSpec& spec, std::span<const uint8_t> index,
                                       std::span<const uint8_t> values, std::vector<float> scales,
                                       std::vector<uint8_t> zero_points) {
  require(spec.sparse.has_value(), kWhere, "the layer spec has no sparsity");
  const int64_t rows = spec.out_features, cols = spec.in_features;
  require(rows >= 0 && cols >= 0, kWhere, "negative size");
  const SparseLayoutSpec& layout = *spec.sparse;
  std::vector<uint8_t> mask(static_cast<size_t>(rows * cols), 0);
  // The mask from the index.
  if (layout.bitmap()) {
    const int64_t row_bytes = (cols + 7) / 8;
    require(index.size() == static_cast<size_t>(rows * row_bytes), "bitmap",
            std::to_string(index.size()) + " bytes, expected " + str(rows) + "x" + str(row_bytes));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c)
        mask[static_cast<size_t>(r * cols + c)] = (index[static_cast<size_t>(r * row_bytes + c / 8)] >> (c % 8)) & 1;
      if (cols % 8)
        require((index[static_cast<size_t>(r * row_bytes + row_bytes - 1)] >> (cols % 8)) == 0, "bitmap",
                "row " + str(r) + " sets bits past column " + str(cols - 1));
    }
  } else {
    const int64_t slots = layout.slots(cols);
    const size_t row_bytes = packed_bytes(static_cast<size_t>(slots), layout.index_bits());
    require(index.size() == static_cast<size_t>(rows) * row_bytes, "index",
            std::to_string(index.size()) + " bytes, expected " + str(rows) + "x" + std::to_string(row_bytes));
    std::vector<uint8_t> positions(static_cast<size_t>(slots));
    for (int64_t r = 0; r < rows; ++r) {
      try {
        unpack_bits(index.subspan(static_cast<size_t>(r) * row_bytes, row_bytes), layout.index_bits(), positions);
      } catch (const Error& e) {
        throw e.with_context("index row " + str(r));
      }
      int64_t slot = 0;
      for (int64_t c0 = 0; c0 < cols; c0 += layout.m) {
        const int64_t width = std::min<int64_t>(layout.m, cols - c0), n = std::min<int64_t>(layout.n, width);
        int last = -1;
        for (int64_t k = 0; k < n; ++k, ++slot) {
          const int p = positions[static_cast<size_t>(slot)];
          require(p > last && p < width, "index",
                  at(r, c0) + ": slot positions must ascend within the group's " + str(width) + " columns, found " +
                      std::to_string(p) + " after " + std::to_string(last));
          last = p;
          mask[static_cast<size_t>(r * cols + c0 + p)] = 1;
        }
      }
    }
  }
  SparseTensor t;
  t.rows_ = rows;
  t.cols_ = cols;
  t.layout_ = layout;
  if (!spec.quantized) {
    (void)round_to(spec.value_dtype, 0.0f);  // refuses other dtypes
    t.value_dtype_ = spec.value_dtype;
    const size_t width = dtype_size(spec.value_dtype);
    size_t kept = 0;
    for (uint8_t k : mask) kept += k;
    require(values.size() == kept * width, "values",
            std::to_string(values.size()) + " bytes for " + std::to_string(kept) + " kept weights of " +
                std::to_string(width) + " bytes");
    t.values_.assign(mask.size(), 0.0f);
    size_t next = 0;
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i]) {
        const float v = get_value(spec.value_dtype, values.data() + next * width);
        require(std::isfinite(v), "values", at(static_cast<int64_t>(i) / cols, static_cast<int64_t>(i) % cols) + " is not finite");
        t.values_[i] = v;
        ++next;
      }
    t.mask_ = std::move(mask);
    return t;
  }
  // Quantized: the kept codes back into a dense code matrix; the pruned entries get the zero code.
  const QuantScheme scheme = QuantScheme::with_format(spec.format, spec.group_size, spec.scale_dtype);
  try {
    scheme.validate(cols);
  } catch (const Error& e) {
    throw e.with_context("scheme");
  }
  const int bits = spec.bits();
  const int64_t groups = spec.groups(), group = spec.group_size > 0 ? spec.group_size : std::max<int64_t>(cols, 1);
  const int64_t row_bytes = spec.row_bytes();
  require(scales.size() == static_cast<size_t>(rows * groups), "scales",
          std::to_string(scales.size()) + " values, expected " + str(rows) + "x" + str(groups));
  const bool asymmetric = scheme.asymmetric();
  require(zero_points.size() == (asymmetric ? static_cast<size_t>(rows * groups) : 0u), "qzeros",
          std::to_string(zero_points.size()) + " values, expected " + (asymmetric ? str(rows * groups) : std::string("none")));
  const uint8_t symmetric_zero = static_cast<uint8_t>(spec.format.encode(0.0f));
  std::vector<uint8_t> codes(static_cast<size_t>(cols)), kept_codes, packed(static_cast<size_t>(rows * row_bytes));
  size_t offset = 0;
  for (int64_t r = 0; r < rows; ++r) {
    size_t kept = 0;
    for (int64_t c = 0; c < cols; ++c) kept += mask[static_cast<size_t>(r * cols + c)];
    const size_t bytes = packed_bytes(kept, bits);
    require(offset + bytes <= values.size(), "qweight",
            "ends at row " + str(r) + " (" + std::to_string(values.size()) + " bytes, row " + str(r) + " needs " +
                std::to_string(offset + bytes) + ")");
    kept_codes.resize(kept);
    try {
      unpack_bits(values.subspan(offset, bytes), bits, kept_codes);
    } catch (const Error& e) {
      throw e.with_context("qweight row " + str(r));
    }
    offset += bytes;
    size_t next = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = c / group;
      codes[static_cast<size_t>(c)] = mask[static_cast<size_t>(r * cols + c)]
                                          ? kept_codes[next++]
                                          : (asymmetric ? zero_points[static_cast<size_t>(r * groups + g)] : symmetric_zero);
    }
    pack_bits(codes, bits, std::span(packed).subspan(static_cast<size_t>(r * row_bytes), static_cast<size_t>(row_bytes)));
  }
  require(offset == values.size(), "qweight", std::to_string(values.size()) + " bytes, the index implies " + std::to_string(offset));
  t.quantized_ = QuantizedTensor::from_parts(rows, cols, scheme, std::move(packed), std::move(scales), std::move(zero_points));
  t.mask_ = std::move(mask);
  return t;
}

}  // namespace lowbit
