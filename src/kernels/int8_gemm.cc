// The int8-activation prefill GEMM (kernels/int8_gemm.h): activation rounding for many tokens, the
// panel repack, dispatch, the scalar panel kernel and the scalar definition. Compiled with
// -ffp-contract=off (CMakeLists.txt): the definition's multiplies, adds and fmas are written out and
// must stay as written.
#include "lowbit/kernels/int8_gemm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/packed_gemv.h"
#include "lowbit/numerics/packing.h"
#include "src/kernels/int8_gemm_internal.h"
#include "src/kernels/int8_gemv_internal.h"

namespace lowbit {
namespace {
using int8_gemm_detail::kBlock;
using int8_gemm_detail::kPanelRows;
using int8_gemm_detail::kQuad;
using int8_gemm_detail::Panel;
using int8_gemm_detail::Tokens;
constexpr const char* kWhere = "int8 GEMM";

// The tensor's grid as the definition reads it: v = (code XOR flip) − z_g, w = s'_g·v + m_g (the codes'
// part is what the AVX-512 repack reads too).
struct Grid : int8_gemm_detail::Codes {
  size_t group_cols = 0;  // columns per group (cols with one group per row)
  float factor = 1.0f;
  const float* scales = nullptr;
  const float* mins = nullptr;

  explicit Grid(const QuantizedTensor& w)
      : scales(w.scales().data()), mins(w.mins().empty() ? nullptr : w.mins().data()) {
    codes = w.packed_codes().data();
    row_bytes = static_cast<size_t>(w.row_bytes());
    cols = static_cast<size_t>(w.cols());
    groups = static_cast<size_t>(w.groups_per_row());
    blocks = (cols + kBlock - 1) / kBlock;
    group_cols = groups <= 1 ? cols : static_cast<size_t>(w.group_size());
    segment_cols = groups <= 1 || group_cols % kBlock == 0 ? kBlock : kBlock / 2;
    segments_per_block = kBlock / segment_cols;
    segments = blocks * segments_per_block;
    segments_per_group = groups <= 1 ? segments : group_cols / segment_cols;
    bits = w.bits();
    zeros = w.zero_points().empty() ? nullptr : w.zero_points().data();
    const Format& f = w.scheme().element;
    int zero = 0;
    if (f.kind() != Format::Kind::kInt) {
      mapped = int8_detail::small_integer_levels(f, map, zero, factor);
      implicit_zero = static_cast<uint8_t>(zero);
    } else if (f.twos_complement()) {
      flip = static_cast<uint8_t>(1u << (bits - 1));
      implicit_zero = flip;
      factor = static_cast<float>(std::ldexp(1.0, -f.fraction_bits()));
    }
  }
  // u_c: the code as offset binary, or its mapped level.
  uint8_t u(uint32_t code) const { return mapped ? map[code] : static_cast<uint8_t>(code ^ flip); }
  // v_c of row r (c < cols).
  int32_t v(size_t r, size_t c) const {
    const uint32_t code = packed_code_at(codes + r * row_bytes, row_bytes, c, bits);
    const size_t g = c / group_cols;
    const int z = zeros ? zeros[r * groups + g] : implicit_zero;
    return static_cast<int32_t>(u(code)) - z;
  }
  float scale(size_t r, size_t g) const { return scales[r * groups + g] * factor; }
};

// f(g, b, c0, c1) for every piece [c0, c1) = block b ∩ group g (within the tensor's columns), groups
// in order and each group's blocks left to right.
template <class F>
void for_each_piece(const Grid& grid, F&& f) {
  for (size_t g = 0; g < std::max<size_t>(grid.groups, 1); ++g) {
    const size_t g0 = g * grid.group_cols, g1 = std::min(grid.cols, g0 + grid.group_cols);
    for (size_t c0 = g0; c0 < g1;) {
      const size_t b = c0 / kBlock, c1 = std::min(g1, (b + 1) * kBlock);
      f(g, b, c0, c1);
      c0 = c1;
    }
  }
}

bool kernel_runs_here(Int8Kernel kernel) {
  const auto available = int8_kernels_available();
  return std::find(available.begin(), available.end(), kernel) != available.end();
}

// Builds the panel of rows [row0, row0 + 16) ∩ [0, rows) into `storage` and points `p` at it.
void build_panel(const QuantizedTensor& w, const Grid& grid, Int8Kernel kernel, size_t row0,
                 std::vector<int8_t>& storage, std::vector<int32_t>& bias, std::vector<float>& scale,
                 std::vector<float>& min, Panel& p) {
  const size_t rows = std::min(kPanelRows, static_cast<size_t>(w.rows()) - row0);
  scale.assign(grid.groups * kPanelRows, 0.0f);
  min.assign(grid.mins ? grid.groups * kPanelRows : 0, 0.0f);
  for (size_t i = 0; i < rows; ++i)
    for (size_t g = 0; g < grid.groups; ++g) {
      scale[g * kPanelRows + i] = grid.scale(row0 + i, g);
      if (grid.mins) min[g * kPanelRows + i] = grid.mins[(row0 + i) * grid.groups + g];
    }
  p.scale = scale.data();
  p.min = grid.mins ? min.data() : nullptr;
#if defined(__x86_64__) || defined(__i386__)
  if ((kernel == Int8Kernel::kAvx512 || kernel == Int8Kernel::kAvx512Vnni) && grid.cols % kBlock == 0 &&
      (grid.bits == 2 || grid.bits == 3 || grid.bits == 4 || grid.bits == 8)) {
    storage.resize(grid.blocks * kBlock * kPanelRows);
    bias.resize(grid.segments * kPanelRows);
    int8_gemm_detail::pack_codes_avx512(grid, row0, rows, storage.data(), bias.data());
    p.v = storage.data();
    p.bias = bias.data();
    return;
  }
#else
  (void)kernel;
#endif
  storage.assign(grid.blocks * kBlock * kPanelRows, 0);
  bias.assign(grid.segments * kPanelRows, 0);
  p.v = storage.data();
  p.bias = bias.data();
  thread_local std::vector<int8_t> row_v;
  row_v.resize(grid.blocks * kBlock);
  // byte → its two 4-bit codes' u (XOR flip, or mapped), as two bytes.
  struct Pairs {
    uint8_t bytes[256][2];
    explicit Pairs(const uint8_t* u) {  // u[code] for the 16 codes
      for (uint32_t b = 0; b < 256; ++b) {
        bytes[b][0] = u[b & 0xF];
        bytes[b][1] = u[b >> 4];
      }
    }
  };
  static const auto xor_table = [](uint8_t flip) {
    std::array<uint8_t, 16> u{};
    for (uint8_t c = 0; c < 16; ++c) u[c] = static_cast<uint8_t>(c ^ flip);
    return u;
  };
  static const Pairs unsigned_pairs(xor_table(0).data()), signed_pairs(xor_table(8).data());
  std::optional<Pairs> mapped_pairs;
  if (grid.mapped) mapped_pairs.emplace(grid.map);
  const Pairs& pairs = grid.mapped ? *mapped_pairs : grid.flip ? signed_pairs : unsigned_pairs;
  for (size_t i = 0; i < rows; ++i) {
    const size_t r = row0 + i;
    // The row's offset-binary codes u, then minus each group's zero point (v = u − z wraps to int8).
    const uint8_t* row = grid.codes + r * grid.row_bytes;
    if (grid.bits == 8) {
      for (size_t c = 0; c < grid.cols; ++c) row_v[c] = static_cast<int8_t>(row[c] ^ grid.flip);
    } else if (grid.bits == 4) {
      // Two columns per byte through a table (low nibble first), flip or map applied.
      for (size_t k = 0; k < grid.cols / 2; ++k) std::memcpy(&row_v[2 * k], pairs.bytes[row[k]], 2);
      if (grid.cols % 2) row_v[grid.cols - 1] = static_cast<int8_t>(grid.u(row[grid.cols / 2] & 0xF));
    } else {
      // 1-, 2-, 3-, 5-, 6- and 7-bit codes: unpacked, then flipped to offset binary.
      w.codes_of_row(static_cast<int64_t>(r), std::span<uint8_t>(reinterpret_cast<uint8_t*>(row_v.data()), grid.cols));
      for (size_t c = 0; c < grid.cols; ++c) row_v[c] = static_cast<int8_t>(static_cast<uint8_t>(row_v[c]) ^ grid.flip);
    }
    std::fill(row_v.begin() + static_cast<ptrdiff_t>(grid.cols), row_v.end(), int8_t{0});
    for (size_t g = 0; g < grid.groups; ++g) {
      const uint8_t z = grid.zeros ? grid.zeros[r * grid.groups + g] : grid.implicit_zero;
      const size_t c1 = std::min(grid.cols, (g + 1) * grid.group_cols);
      for (size_t c = g * grid.group_cols; c < c1; ++c)
        row_v[c] = static_cast<int8_t>(static_cast<uint8_t>(row_v[c]) - z);
    }
    for (size_t s = 0; s < grid.segments; ++s) {
      int32_t sum = 0;
      for (size_t k = 0; k < grid.segment_cols; ++k) sum += row_v[s * grid.segment_cols + k];
      bias[s * kPanelRows + i] = -128 * sum;
    }
    // Column quad j of block b: 4 bytes at lane i of the 64-byte vector (b, j).
    for (size_t quad = 0; quad < grid.blocks * (kBlock / kQuad); ++quad)
      std::memcpy(&storage[(quad * kPanelRows + i) * kQuad], &row_v[quad * kQuad], kQuad);
  }
}

// The definition on a panel, one lane at a time (the scalar kernel).
void panel_scalar(const Tokens& x, const Panel& p, size_t valid, float* y, size_t y_stride) {
  for (size_t t = 0; t < x.tokens; ++t) {
    const int8_t* q = x.q + t * x.blocks * kBlock;
    for (size_t i = 0; i < valid; ++i) {
      float out = 0.0f;
      for (size_t g = 0; g < x.groups; ++g) {
        float acc = 0.0f;
        const size_t s1 = std::min(x.segments, (g + 1) * x.segments_per_group);
        for (size_t s = g * x.segments_per_group; s < s1;) {  // one piece (a block's segments in g)
          const size_t end = x.piece_end(s, s1);
          int32_t sum = 0;
          for (size_t j = s * x.quads_per_segment(); j < end * x.quads_per_segment(); ++j)
            for (size_t k = 0; k < kQuad; ++k) sum += p.v[(j * kPanelRows + i) * kQuad + k] * q[j * kQuad + k];
          acc = std::fma(static_cast<float>(sum), x.block_scale[t * x.blocks + s / x.segments_per_block], acc);
          s = end;
        }
        out = std::fma(acc, p.scale[g * kPanelRows + i], out);
        if (p.min) out = std::fma(p.min[g * kPanelRows + i], x.group_x[t * x.groups + g], out);
      }
      y[t * y_stride + i] = out;
    }
  }
}

void check_range(const QuantizedTensor& w, int64_t row_begin, int64_t row_end, int64_t y_stride) {
  require(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows(), kWhere,
          "rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") outside a tensor of " +
              std::to_string(w.rows()) + " rows");
  require(y_stride >= w.rows(), kWhere,
          "output stride " + std::to_string(y_stride) + " below the " + std::to_string(w.rows()) + " rows");
}
}  // namespace

bool int8_gemm_supported(const QuantizedTensor& w) {
  // The integer grids the packed kernels read (no g_idx) at 1 to 8 bits, and 4-bit grids of small
  // integer levels (e2m1: MXFP4, NVFP4); groups of whole 16-column segments.
  if (!packed_gemv_supported(w)) return false;
  const Format& f = w.scheme().element;
  if (f.kind() != Format::Kind::kInt && !int8_detail::has_small_integer_levels(f)) return false;
  if (w.groups_per_row() > 1 && w.group_size() % 16 != 0) return false;
  // Signed codes must fit int8: v = u − z lies in [−127, 127] up to 7 bits; 8 bits only as two's
  // complement (v in [−128, 127]).
  return w.bits() <= 7 || (f.twos_complement() && w.zero_points().empty() && w.mins().empty());
}

void int8_gemm_prepare(const QuantizedTensor& w, const float* x, int64_t tokens, Int8GemmInput& input,
                       Int8Kernel kernel) {
  if (!int8_gemm_supported(w)) throw Error(kWhere, "no int8 GEMM for " + w.scheme().to_string());
  require(kernel_runs_here(kernel), kWhere, "the " + int8_kernel_name(kernel) + " kernel does not run on this CPU");
  require(tokens >= 0, kWhere, "negative token count " + std::to_string(tokens));
  const Grid grid(w);
  input.kernel = kernel;
  input.cols = w.cols();
  input.tokens = tokens;
  input.blocks = static_cast<int64_t>(grid.blocks);
  input.groups = static_cast<int64_t>(grid.groups);
  input.group_size = w.group_size();
  input.bits = w.bits();
  const size_t width = grid.blocks * kBlock;
  input.q.assign(static_cast<size_t>(tokens) * width, 0);
  input.block_scale.assign(static_cast<size_t>(tokens) * grid.blocks, 0.0f);
  input.group_x.assign(static_cast<size_t>(tokens) * grid.groups, 0.0f);
  const bool offset = kernel == Int8Kernel::kAvx512Vnni;
  // Tokens are independent: any split over threads gives the same bytes.
  parallel_for(tokens, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int8_t* q = input.q.data() + static_cast<size_t>(t) * width;
      float* dx = input.block_scale.data() + static_cast<size_t>(t) * grid.blocks;
      float* gx = input.group_x.data() + static_cast<size_t>(t) * grid.groups;
      int8_detail::round_blocks(x + static_cast<size_t>(t) * grid.cols, grid.cols, q, dx);
      // X_g = Σ_{pieces b ∩ g} dx_b · Σ_{c in b ∩ g} q_c, left to right (as int8_gemv_prepare).
      for_each_piece(grid, [&](size_t g, size_t b, size_t c0, size_t c1) {
        int32_t sum = 0;
        for (size_t c = c0; c < c1; ++c) sum += q[c];
        gx[g] += dx[b] * static_cast<float>(sum);
      });
      if (offset)
        for (size_t c = 0; c < width; ++c) q[c] = static_cast<int8_t>(static_cast<uint8_t>(q[c] + 128));
    }
  });
}

void int8_gemm_rows(const QuantizedTensor& w, const Int8GemmInput& input, int64_t row_begin, int64_t row_end,
                    float* y, int64_t y_stride) {
  check_range(w, row_begin, row_end, y_stride);
  if (!int8_gemm_supported(w)) throw Error(kWhere, "no int8 GEMM for " + w.scheme().to_string());
  const Grid grid(w);
  require(input.cols == w.cols() && input.groups == static_cast<int64_t>(grid.groups) &&
              input.group_size == w.group_size() && input.bits == w.bits() &&
              input.q.size() == static_cast<size_t>(input.tokens) * grid.blocks * kBlock,
          kWhere, "input was prepared for another tensor layout");
  if (input.tokens == 0 || row_begin == row_end) return;
  Tokens x;
  static_cast<int8_gemm_detail::Geometry&>(x) = grid;
  x.tokens = static_cast<size_t>(input.tokens);
  x.q = input.q.data();
  x.block_scale = input.block_scale.data();
  x.group_x = input.group_x.data();
  // Two panels' scratch per thread (the x86 kernels run panels in pairs).
  thread_local std::vector<int8_t> storage[2];
  thread_local std::vector<int32_t> bias[2];
  thread_local std::vector<float> scale[2], min[2];
  const size_t r1 = static_cast<size_t>(row_end);
  for (size_t r = static_cast<size_t>(row_begin); r < r1;) {
    const size_t count = input.kernel == Int8Kernel::kScalar ? 1 : std::min<size_t>(2, (r1 - r + kPanelRows - 1) / kPanelRows);
    Panel p[2];
    size_t valid[2] = {0, 0};
    for (size_t k = 0; k < count; ++k) {
      build_panel(w, grid, input.kernel, r + k * kPanelRows, storage[k], bias[k], scale[k], min[k], p[k]);
      valid[k] = std::min(kPanelRows, r1 - (r + k * kPanelRows));
    }
    float* out = y + r;
    const size_t stride = static_cast<size_t>(y_stride);
    switch (input.kernel) {
#if defined(__x86_64__) || defined(__i386__)
      case Int8Kernel::kAvx512Vnni:
        int8_gemm_detail::panels_avx512_vnni(x, p, count, valid, out, stride);
        break;
      case Int8Kernel::kAvx2:
      case Int8Kernel::kAvx512:
        int8_gemm_detail::panels_avx2(x, p, count, valid, out, stride);
        break;
#endif
      default:
        for (size_t k = 0; k < count; ++k) panel_scalar(x, p[k], valid[k], out + k * kPanelRows, stride);
    }
    r += valid[0] + valid[1];
  }
}

void int8_gemm_reference(const QuantizedTensor& w, const float* x, int64_t tokens, int64_t row_begin,
                         int64_t row_end, float* y, int64_t y_stride) {
  check_range(w, row_begin, row_end, y_stride);
  if (!int8_gemm_supported(w)) throw Error(kWhere, "no int8 GEMM for " + w.scheme().to_string());
  const Grid grid(w);
  std::vector<int8_t> q(grid.cols);
  std::vector<float> dx(grid.blocks), acc, group_x;  // per group: G and X_g
  for (int64_t t = 0; t < tokens; ++t) {
    int8_detail::round_blocks(x + static_cast<size_t>(t) * grid.cols, grid.cols, q.data(), dx.data());
    for (int64_t r = row_begin; r < row_end; ++r) {
      const size_t row = static_cast<size_t>(r);
      float out = 0.0f;
      acc.assign(grid.groups, 0.0f);
      group_x.assign(grid.groups, 0.0f);
      for_each_piece(grid, [&](size_t g, size_t b, size_t c0, size_t c1) {
        int32_t sum = 0, q_sum = 0;
        for (size_t c = c0; c < c1; ++c) {
          sum += grid.v(row, c) * q[c];
          q_sum += q[c];
        }
        acc[g] = std::fma(static_cast<float>(sum), dx[b], acc[g]);
        group_x[g] += dx[b] * static_cast<float>(q_sum);
      });
      for (size_t g = 0; g < grid.groups; ++g) {
        out = std::fma(acc[g], grid.scale(row, g), out);
        if (grid.mins) out = std::fma(grid.mins[row * grid.groups + g], group_x[g], out);
      }
      y[t * y_stride + r] = out;
    }
  }
}

}  // namespace lowbit
