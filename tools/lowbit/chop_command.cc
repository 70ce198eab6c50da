// lowbit chop --format FORMAT [--rounding MODE] [--block N | --tile N] [--scale-format F] [--seed S]
//   Rounds numbers into a format (fake quantization, like Higham & Pranesh's chop / pychop):
//   one number per line on stdin -> one per line on stdout, or a safetensors tensor
//   (--in FILE --tensor NAME --out FILE). FORMAT is an element format (e4m3, int4, nf4,
//   e5m7:bias=20, ...: values are rounded as they are) or a block format (mxfp4, nvfp4, nf4_b64,
//   int4_g128, ...: values are scaled per block first). --block/--tile turn an element format into
//   a block format with --scale-format scales (default fp32; ue8m0 selects the OCP MX rule).
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/numerics/block_format.h"
#include "lowbit/numerics/format.h"
#include "lowbit/numerics/quantize.h"

namespace lowbit::cli {

namespace {

struct ChopOptions {
  std::string format, rounding = "nearest", scale_format, scale_rule, scale_search = "absmax", overflow;
  int64_t block = 0, tile = 0;
  int axis = 1;
  double percentile = 99.9;
  bool tensor_scale = false;
  uint64_t seed = 0, stream = 0;
  std::string in, tensor, out, out_dtype = "f32";
  bool codes = false;
};

// What the options describe: an element format alone, or a block format.
struct Plan {
  Format element = Format::e2m1();
  std::optional<BlockFormat> block;
  Rounding rounding = Rounding::kNearestEven;
  BlockQuantizeOptions block_options;
  RandomKey key;
};

Plan make_plan(const ChopOptions& o) {
  Plan plan;
  plan.rounding = parse_rounding_or_throw(o.rounding);
  plan.key = {o.seed, o.stream, 0};
  plan.block = BlockFormat::parse_preset(o.format);
  if (!plan.block) {
    try {
      plan.element = Format::parse(o.format);
    } catch (const Error& e) {
      throw Error("--format", std::string(e.what()) + "; block formats: mxfp8, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, "
                                                       "mxfp4, mxint8, nvfp4, nvfp4_2d, nf4_b64, intB_gN, uintB_gN, dfpB");
    }
  }
  const bool blocked = o.block > 0 || o.tile > 0;
  require(!(o.block > 0 && o.tile > 0), "--block", "give --block or --tile, not both");
  require(o.block >= 0 && o.tile >= 0, "--block", "block sizes must be positive");
  require(o.axis == 0 || o.axis == 1, "--axis", "expected 0 or 1, found " + std::to_string(o.axis));
  if (!o.overflow.empty()) {
    require(!plan.block, "--overflow", "applies to element formats; block formats saturate");
    if (o.overflow == "saturate" || o.overflow == "sat") plan.element = plan.element.with_overflow(Overflow::kSaturate);
    else if (o.overflow == "inf" || o.overflow == "nan" || o.overflow == "special")
      plan.element = plan.element.with_overflow(Overflow::kSpecial);
    else throw Error("--overflow", "expected saturate or inf, found \"" + o.overflow + "\"");
  }
  if (!plan.block && (blocked || !o.scale_format.empty() || o.tensor_scale)) {
    BlockFormat b;
    b.element = plan.element;
    b.scale = o.scale_format.empty() ? Format::fp32() : Format::parse(o.scale_format);
    b.rule = b.scale.kind() == Format::Kind::kFloat && b.scale.mantissa_bits() == 0 ? ScaleRule::kMx
                                                                                     : ScaleRule::kAbsmax;
    b.granularity = Granularity::per_tensor();
    b.tensor_scale = o.tensor_scale;
    plan.block = b;
  } else if (plan.block) {
    if (!o.scale_format.empty()) plan.block->scale = Format::parse(o.scale_format);
    if (o.tensor_scale) plan.block->tensor_scale = true;
    if (blocked || !o.scale_format.empty() || o.tensor_scale) plan.block->name.clear();
  }
  if (plan.block) {
    if (o.block > 0) plan.block->granularity = Granularity::groups(o.block, o.axis);
    if (o.tile > 0) plan.block->granularity = Granularity::tiles(o.tile, o.tile);
    if (!o.scale_rule.empty()) {
      if (o.scale_rule == "mx") plan.block->rule = ScaleRule::kMx;
      else if (o.scale_rule == "absmax") plan.block->rule = ScaleRule::kAbsmax;
      else throw Error("--scale-rule", "expected mx or absmax, found \"" + o.scale_rule + "\"");
      plan.block->name.clear();
    }
    plan.block->validate();
    auto& scale = plan.block_options.scale;
    if (o.scale_search == "absmax") scale.search = ScaleSearch::kAbsmax;
    else if (o.scale_search == "percentile") scale.search = ScaleSearch::kPercentile;
    else if (o.scale_search == "mse") scale.search = ScaleSearch::kMse;
    else if (o.scale_search == "absmean") scale.search = ScaleSearch::kAbsMean;
    else throw Error("--scale-search", "expected absmax, percentile, mse or absmean, found \"" + o.scale_search + "\"");
    scale.percentile = o.percentile;
    plan.block_options.rounding = plan.rounding;
    plan.block_options.random = plan.key;
  } else {
    require(o.scale_rule.empty() && o.scale_search == "absmax", "--scale-rule",
            "scale options need a block format (--block, --tile, --scale-format or a block preset)");
  }
  return plan;
}

void chop(const Plan& plan, std::vector<float>& values, const Shape& shape) {
  if (plan.block)
    quantize_dequantize_blocks(values, values, shape, *plan.block, plan.block_options);
  else
    quantize_dequantize(values, values, plan.element, plan.rounding, plan.key);
}

std::string format_number(float value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(value));  // round-trips every float
  return text;
}

std::vector<float> read_numbers(std::istream& in) {
  std::vector<float> values;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos) continue;  // blank lines are skipped
    const size_t end = line.find_last_not_of(" \t\r") + 1;
    const std::string text = line.substr(begin, end - begin);
    errno = 0;
    char* stop = nullptr;
    const float value = std::strtof(text.c_str(), &stop);
    if (stop != text.c_str() + text.size() || text.empty())
      throw Error("stdin line " + std::to_string(number), "expected one number, found \"" + text.substr(0, 40) + "\"");
    if (errno == ERANGE && std::isinf(value))
      throw Error("stdin line " + std::to_string(number), "\"" + text.substr(0, 40) + "\" is outside the float32 range");
    values.push_back(value);
  }
  return values;
}

int chop_stdin(const Plan& plan) {
  std::vector<float> values = read_numbers(std::cin);
  chop(plan, values, {static_cast<int64_t>(values.size())});
  std::string out;
  out.reserve(values.size() * 12);
  for (float v : values) out += format_number(v) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int chop_file(const ChopOptions& o, const Plan& plan) {
  const SafetensorsFile file = SafetensorsFile::open(o.in);
  std::string name = o.tensor;
  if (name.empty()) {
    const auto names = file.names();
    require(names.size() == 1, "--tensor", o.in + " holds " + std::to_string(names.size()) + " tensors; name one");
    name = names[0];
  }
  const Tensor input = file.tensor(name);
  require(input.dtype() == DType::kF32 || input.dtype() == DType::kF16 || input.dtype() == DType::kBF16 ||
              input.dtype() == DType::kF64,
          o.in + ": tensor '" + name + "'", "expected a float tensor, found " + std::string(dtype_name(input.dtype())));
  const auto out_dtype = parse_dtype_lenient(o.out_dtype);
  require(out_dtype && (*out_dtype == DType::kF32 || *out_dtype == DType::kF16 || *out_dtype == DType::kBF16),
          "--out-dtype", "expected f32, f16 or bf16, found \"" + o.out_dtype + "\"");
  std::vector<float> values = input.to_f32_vector();
  const Shape shape = input.shape();
  NamedTensors tensors;
  std::map<std::string, std::string> metadata = {
      {"lowbit.format", plan.block ? plan.block->to_string() : plan.element.to_string()},
      {"lowbit.rounding", std::string(rounding_name(plan.rounding))},
      {"lowbit.seed", std::to_string(o.seed)},
      {"lowbit.stream", std::to_string(o.stream)}};
  if (o.codes) {
    // Codes (one per element, unpacked), and for block formats the scales in both forms.
    if (plan.block) {
      const BlockQuantized q = quantize_blocks(values, shape, *plan.block, plan.block_options);
      values = q.dequantize();
      const Shape grid = {q.grid_rows, q.grid_cols};
      if (q.format.element.bits() <= 8) {
        std::vector<uint8_t> narrow(q.codes.begin(), q.codes.end());
        tensors.emplace_back(name + ".codes", Tensor::copy_of(DType::kU8, shape, narrow.data(), narrow.size()));
      } else {
        tensors.emplace_back(name + ".codes", Tensor::copy_of(DType::kU16, shape, q.codes.data(), q.codes.size() * 2));
      }
      tensors.emplace_back(name + ".scales", Tensor::copy_of(DType::kF32, grid, q.scales.data(), q.scales.size() * 4));
      tensors.emplace_back(name + ".scale_codes",
                           Tensor::copy_of(DType::kU32, grid, q.scale_codes.data(), q.scale_codes.size() * 4));
      if (!q.zero_points.empty())
        tensors.emplace_back(name + ".zero_points",
                             Tensor::copy_of(DType::kI32, grid, q.zero_points.data(), q.zero_points.size() * 4));
      metadata["lowbit.tensor_scale"] = format_number(q.tensor_scale);
    } else {
      require(plan.element.bits() <= 16, "--codes", plan.element.to_string() + " codes do not fit 16 bits");
      std::vector<uint16_t> codes(values.size());
      encode(values, std::span<uint16_t>(codes), plan.element, plan.rounding, plan.key);
      decode(codes, values, plan.element);
      if (plan.element.bits() <= 8) {
        std::vector<uint8_t> narrow(codes.begin(), codes.end());
        tensors.emplace_back(name + ".codes", Tensor::copy_of(DType::kU8, shape, narrow.data(), narrow.size()));
      } else {
        tensors.emplace_back(name + ".codes", Tensor::copy_of(DType::kU16, shape, codes.data(), codes.size() * 2));
      }
    }
  } else {
    chop(plan, values, shape);
  }
  Tensor chopped = Tensor::copy_of(DType::kF32, shape, values.data(), values.size() * sizeof(float));
  if (*out_dtype != DType::kF32) chopped = chopped.to(*out_dtype);
  tensors.insert(tensors.begin(), {name, std::move(chopped)});
  write_safetensors(o.out, tensors, metadata);
  return 0;
}

}  // namespace

Runner add_chop_command(CLI::App& app) {
  auto o = std::make_shared<ChopOptions>();
  app.add_option("--format", o->format, "element format (e4m3, int4, nf4, eXmY...) or block format (mxfp4, nvfp4, ...)")
      ->required();
  app.add_option("--rounding", o->rounding,
                 "nearest (default), nearest-away, toward-zero, up, down, stochastic, stochastic-equal");
  app.add_option("--block", o->block, "scale groups of N elements along --axis (default: the last axis)");
  app.add_option("--axis", o->axis, "axis of the [rows, cols] view the groups run along: 1 (default) or 0");
  app.add_option("--tile", o->tile, "scale square N x N tiles instead of 1-D groups");
  app.add_option("--scale-format", o->scale_format, "format of the block scales (default fp32; ue8m0 = OCP MX)");
  app.add_option("--scale-rule", o->scale_rule, "mx (power-of-two shared exponent) or absmax");
  app.add_option("--scale-search", o->scale_search, "absmax (default), percentile, mse or absmean");
  app.add_option("--percentile", o->percentile, "for --scale-search percentile (default 99.9)");
  app.add_flag("--tensor-scale", o->tensor_scale, "add an fp32 per-tensor scale (NVFP4's second level)");
  app.add_option("--overflow", o->overflow, "element formats with Inf/NaN: saturate or inf");
  app.add_option("--seed", o->seed, "seed of stochastic rounding (default 0)");
  app.add_option("--stream", o->stream, "stream of stochastic rounding (default 0)");
  app.add_option("--in", o->in, "read a tensor from this safetensors file instead of stdin");
  app.add_option("--tensor", o->tensor, "name of the tensor in --in (optional when it holds one)");
  app.add_option("--out", o->out, "write the rounded tensor (F32, or --out-dtype) to this safetensors file");
  app.add_option("--out-dtype", o->out_dtype, "f32 (default), f16 or bf16");
  app.add_flag("--codes", o->codes, "with --out: also write NAME.codes, NAME.scales, NAME.scale_codes (, NAME.zero_points)");
  app.footer(
      "Examples:\n"
      "  printf '0.1\\n3.14159\\n1000\\n' | lowbit chop --format e4m3\n"
      "  seq 1 40 | lowbit chop --format mxfp4\n"
      "  lowbit chop --format e2m1 --block 16 --scale-format ue4m3 --tensor-scale < values.txt\n"
      "  lowbit chop --format bf16 --rounding stochastic --seed 7 < values.txt\n"
      "  lowbit chop --format nvfp4 --in model.safetensors --tensor w --out w_nvfp4.safetensors --codes");
  return [o] {
    const Plan plan = make_plan(*o);
    const bool file_mode = !o->in.empty() || !o->out.empty() || !o->tensor.empty();
    if (file_mode) {
      require(!o->in.empty() && !o->out.empty(), "--in", "reading a tensor needs both --in FILE and --out FILE");
      return chop_file(*o, plan);
    }
    require(!o->codes, "--codes", "needs --in and --out");
    return chop_stdin(plan);
  };
}

}  // namespace lowbit::cli
