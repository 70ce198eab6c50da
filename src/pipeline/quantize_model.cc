#include "lowbit/pipeline/quantize_model.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "lowbit/compress/awq.h"
#include "lowbit/compress/gptq.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/compress/sparse_tensor.h"
#include "lowbit/compress/sparsegpt.h"
#include "lowbit/compress/statistics.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/linalg/blas.h"
#include "lowbit/model/llama.h"
#include "lowbit/pipeline/awq_folding.h"
#include "block_calibration.h"

namespace lowbit {

using namespace pipeline_detail;

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Indices into LlamaModel::block_linear_names (q, k, v, o, gate, up, down), in dependency order:
// each stage's layers share one input, produced by the stages before it.
const std::vector<std::vector<int>> kStages = {{0, 1, 2}, {3}, {4, 5}, {6}};

// ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖² from H = XᵀX: Σ_r δ_r H δ_rᵀ / Σ_r w_r H w_rᵀ. The products δH run as sgemm
// over fixed tiles of rows (f32 — this is a report, not an optimization target); sums in double,
// added tile by tile in order, so the figure does not depend on the thread count.
double relative_output_error(std::span<const float> w, std::span<const float> w_hat, int64_t rows, int64_t cols,
                             std::span<const double> hessian) {
  const std::vector<float> h(hessian.begin(), hessian.end());
  constexpr int64_t kTile = 64;
  const int64_t tiles = (rows + kTile - 1) / kTile;
  std::vector<double> error(static_cast<size_t>(tiles)), reference(static_cast<size_t>(tiles));
  parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> delta, product;
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t r0 = tile * kTile, n = std::min(kTile, rows - r0);
      delta.resize(static_cast<size_t>(n * cols));
      product.resize(delta.size());
      for (int64_t i = 0; i < n * cols; ++i) delta[i] = w[r0 * cols + i] - w_hat[r0 * cols + i];
      error[static_cast<size_t>(tile)] = quadratic_form_rows(delta.data(), n, cols, h.data(), product.data());
      reference[static_cast<size_t>(tile)] = quadratic_form_rows(w.data() + r0 * cols, n, cols, h.data(), product.data());
    }
  });
  double e = 0, r = 0;
  for (int64_t t = 0; t < tiles; ++t) e += error[t], r += reference[t];
  return r > 0 ? e / r : (e > 0 ? INFINITY : 0.0);
}

double dtype_bits(DType dtype) { return 8.0 * static_cast<double>(dtype_size(dtype)); }

class SequentialQuantizer {
 public:
  SequentialQuantizer(std::shared_ptr<const ModelFiles> files, const QuantRecipe& recipe,
                      const std::vector<std::vector<int32_t>>& calibration)
      : files_(std::move(files)), recipe_(recipe), calibration_(calibration), model_(files_) {
    pin_blas_to_one_thread();
    validate();
  }

  QuantizeResult run(const std::function<void(const BlockProgress&)>& progress) {
    const auto start = Clock::now();
    const int64_t d = model_.config().hidden_size;
    if (!calibration_.empty()) {
      seqlen_ = static_cast<int64_t>(calibration_.front().size());
      hidden_.resize(calibration_.size());
      for (size_t i = 0; i < calibration_.size(); ++i) {
        hidden_[i].resize(static_cast<size_t>(seqlen_ * d));
        model_.embed(calibration_[i], hidden_[i].data());
      }
    }
    if (progress) progress(BlockProgress{0, model_.num_blocks(), 0, kNaN});  // validated; work starts
    for (int64_t b = 0; b < model_.num_blocks(); ++b) {
      const auto block_start = Clock::now();
      const size_t first_report = reports_.size();
      if (awq() && calibrated()) alpha_.merge(fold_awq_scales(model_, b, hidden_, seqlen_, recipe_));
      const std::vector<std::string> names = model_.block_linear_names(b);
      for (const std::vector<int>& stage : kStages) {
        std::vector<std::string> members;
        for (int index : stage)
          if (handled(recipe_.plan_for(names[index]))) members.push_back(names[index]);
        if (members.empty()) continue;
        InputStatistics stats;
        if (calibrated())
          stats = collect_input_statistics(model_, b, hidden_, seqlen_, {names[stage.front()]}, false).begin()->second;
        quantize_stage(members, calibrated() ? &stats : nullptr);
      }
      if (calibrated())
        for (auto& x : hidden_) model_.forward_block(b, x.data(), seqlen_);
      if (progress) {
        BlockProgress p{b + 1, model_.num_blocks(), seconds_since(block_start), kNaN};
        double sum = 0;
        int64_t count = 0;
        for (size_t i = first_report; i < reports_.size(); ++i) sum += reports_[i].relative_error, ++count;
        if (count) p.mean_relative_error = sum / static_cast<double>(count);
        progress(p);
      }
    }
    if (handled(recipe_.plan_for("lm_head"))) quantize_head("lm_head");
    if (recipe_.plan_for("model.embed_tokens").quantize) {
      // Tied, the table is also the head: quantized as the head (its H, its method) once, and
      // looked up from the same codes. Untied, it is only looked up: RTN.
      if (model_.config().tie_word_embeddings) quantize_head("model.embed_tokens");
      else quantize_stage({"model.embed_tokens"}, nullptr);
    }

    QuantizeResult result;
    result.contents = contents();
    result.layers = ordered_reports();
    result.calibration_tokens = static_cast<int64_t>(calibration_.size()) * seqlen_;
    result.seconds = seconds_since(start);
    return result;
  }

 private:
  bool calibrated() const { return !calibration_.empty(); }
  // Whether the pipeline changes the layer (quantizes or prunes it).
  static bool handled(const LayerPlan& plan) { return plan.quantize || plan.sparse; }
  bool prunes_with_sparsegpt() const { return recipe_.sparsity.method == PruneMethod::kSparseGpt; }
  bool awq() const { return recipe_.method == QuantMethod::kAwq || recipe_.method == QuantMethod::kAwqGptq; }
  bool gptq() const { return recipe_.method == QuantMethod::kGptq || recipe_.method == QuantMethod::kAwqGptq; }

  // Everything a recipe can get wrong, found before hours of work start.
  void validate() const {
    if (needs_calibration(recipe_.method) && recipe_.quantize && calibration_.empty())
      throw Error("method " + std::string(quant_method_name(recipe_.method)) + " needs calibration data (--calib)");
    if (recipe_.sparsity.needs_calibration() && calibration_.empty())
      throw Error("pruning method " + std::string(prune_method_name(recipe_.sparsity.method)) +
                  " needs calibration data (--calib)");
    if (recipe_.sparsity.enabled()) {
      recipe_.sparsity.pattern.validate();
      if (recipe_.gptq.act_order || recipe_.gptq.static_groups)
        throw Error("act-order and static groups are not supported with pruning (masks and groups follow the column order)");
    }
    for (size_t i = 1; i < calibration_.size(); ++i)
      if (calibration_[i].size() != calibration_[0].size()) throw Error("calibration sequences differ in length");
    if (!calibration_.empty() && calibration_[0].empty()) throw Error("calibration sequences are empty");
    const LayerPlan embed = recipe_.plan_for("model.embed_tokens");
    if (embed.quantize) {
      try {
        embed.scheme.validate(model_.config().hidden_size);
      } catch (const Error& e) {
        throw e.with_context("model.embed_tokens");
      }
      if (model_.config().tie_word_embeddings && recipe_.plan_for("lm_head").quantize)
        throw Error("lm_head: the head is tied to model.embed_tokens, which is quantized as " + embed.scheme.to_string() +
                    "; give the head no plan of its own");
    }
    for (const std::string& name : model_.linear_names()) {
      const LayerPlan plan = recipe_.plan_for(name);
      if (!plan.quantize) continue;
      try {
        plan.scheme.validate(model_.linear(name).in_features());
        if (gptq() && recipe_.gptq.static_groups && plan.scheme.group_size == 0)
          throw Error("static groups need a group size (--group G), not per-row scales");
      } catch (const Error& e) {
        throw e.with_context("layer '" + name + "'");
      }
    }
  }

  // Quantizes (and prunes) layers sharing one input (stats: that input's statistics, or null
  // without calibration).
  void quantize_stage(const std::vector<std::string>& members, const InputStatistics* stats) {
    std::optional<GptqHessian> prepared;
    if (stats && (gptq() || prunes_with_sparsegpt()))
      prepared.emplace(stats->hessian, stats->cols, recipe_.gptq.percdamp, recipe_.gptq.act_order);
    for (const std::string& name : members) {
      const auto start = Clock::now();
      const LayerPlan plan = recipe_.plan_for(name);
      // The embedding table is worked on as itself; tied, the head that reads it is replaced too.
      const bool embedding = name == "model.embed_tokens";
      const bool tied_table = embedding && model_.config().tie_word_embeddings;
      const LinearLayer& layer = embedding ? model_.embedding() : model_.linear(name);
      const int64_t rows = layer.out_features(), cols = layer.in_features();
      const std::vector<float> weight = dense_weight(model_, name);
      std::vector<float> bias = dense_bias(model_, name);
      LayerReport report{name, plan.to_string(), rows, cols, 0, kNaN, 0, -1};
      std::vector<float> result;  // the layer's weights as they now are, for the error report
      if (plan.sparse) {
        auto tensor = std::make_shared<SparseTensor>(sparsify_one(name, plan, weight, rows, cols, stats,
                                                                  prepared ? &*prepared : nullptr));
        result = tensor->dense();
        report.bits_per_weight = tensor->bits_per_weight();
        report.sparsity = tensor->sparsity();
        if (tensor->quantized())
          model_.replace_linear(name, std::make_unique<QuantizedLinear>(
                                          std::make_shared<QuantizedTensor>(tensor->quantized_tensor()), std::move(bias)));
        else
          model_.replace_linear(name, dense_linear(result, rows, cols, bias));
        sparse_[name] = tensor;
      } else {
        auto tensor = std::make_shared<QuantizedTensor>(quantize_one(name, plan.scheme, weight, rows, cols, stats,
                                                                     prepared ? &*prepared : nullptr));
        result = tensor->dequantize();
        report.bits_per_weight = tensor->bits_per_weight();
        if (!embedding || tied_table)
          model_.replace_linear(tied_table ? "lm_head" : name, std::make_unique<QuantizedLinear>(tensor, std::move(bias)));
        quantized_[name] = tensor;
      }
      if (auto it = alpha_.find(name); it != alpha_.end()) report.awq_alpha = it->second;
      if (stats) report.relative_error = relative_output_error(weight, result, rows, cols, stats->hessian);
      report.seconds = seconds_since(start);
      reports_.push_back(std::move(report));
    }
  }

  static std::unique_ptr<LinearLayer> dense_linear(const std::vector<float>& w, int64_t rows, int64_t cols,
                                                   const std::vector<float>& bias) {
    std::optional<Tensor> b;
    if (!bias.empty()) b = Tensor::copy_of(DType::kF32, {rows}, bias.data(), bias.size() * sizeof(float));
    return std::make_unique<DenseLinear>(Tensor::copy_of(DType::kF32, {rows, cols}, w.data(), w.size() * sizeof(float)), b);
  }

  // Prunes one layer (and quantizes it when the plan says so); see recipe.h for how methods combine.
  SparseTensor sparsify_one(const std::string& name, const LayerPlan& plan, std::vector<float> weight, int64_t rows,
                            int64_t cols, const InputStatistics* stats, const GptqHessian* prepared) {
    try {
      const SparsityRecipe& sparsity = recipe_.sparsity;
      // SparseGPT's options: the recipe's pattern, GPTQ settings and the layer's grid.
      SparseGptOptions options;
      options.pattern = sparsity.pattern;
      options.quantize = plan.quantize;
      options.gptq = gptq_options(plan.scheme);
      if (sparsity.method == PruneMethod::kSparseGpt) {
        SparseGptResult r = lowbit::sparsegpt(weight, rows, cols, *prepared, options);
        if (plan.quantize) return SparseTensor::from_quantized(std::move(*r.tensor), std::move(r.mask), sparsity.pattern);
        return SparseTensor::from_float(r.weight, std::move(r.mask), rows, cols, sparsity.pattern, plan.keep_dtype);
      }
      std::vector<uint8_t> mask =
          sparsity.method == PruneMethod::kWanda
              ? wanda_mask(weight, rows, cols, sparsity.pattern, input_norms_from_hessian(stats->hessian, cols))
              : magnitude_mask(weight, rows, cols, sparsity.pattern, sparsity.scope);
      if (!plan.quantize) return SparseTensor::from_float(weight, std::move(mask), rows, cols, sparsity.pattern, plan.keep_dtype);
      if (prepared) {
        // Prune, then GPTQ that keeps the pruned weights at zero while it compensates.
        SparseGptResult r = lowbit::sparsegpt(weight, rows, cols, *prepared, options, mask);
        return SparseTensor::from_quantized(std::move(*r.tensor), std::move(mask), sparsity.pattern);
      }
      // RTN / AWQ: zeros round to the grid's zero, so the pruned weights stay exactly 0.
      apply_mask(weight, mask);
      return SparseTensor::from_quantized(quantize_one(name, plan.scheme, weight, rows, cols, stats, nullptr),
                                          std::move(mask), sparsity.pattern);
    } catch (const Error& e) {
      if (std::string(e.what()).starts_with("layer '")) throw;
      throw e.with_context("layer '" + name + "'");
    }
  }

  // The recipe's GPTQ settings for one layer's grid (--clip-search: MSE clipping weighted by diag H).
  GptqOptions gptq_options(const QuantScheme& scheme) const {
    GptqOptions options = recipe_.gptq;
    options.scheme = scheme;
    if (recipe_.clip_search) {
      options.scale.search = ScaleSearch::kMse;
      options.weighted_scale_search = true;
    }
    return options;
  }

  QuantizedTensor quantize_one(const std::string& name, const QuantScheme& scheme, std::vector<float> weight,
                               int64_t rows, int64_t cols, const InputStatistics* stats, const GptqHessian* prepared) {
    try {
      if (prepared) return quantize_gptq(weight, rows, cols, *prepared, gptq_options(scheme)).tensor;
      RtnOptions options;
      options.scheme = scheme;
      std::vector<float> importance;
      // AWQ's weight clipping (auto_clip), except for q/k whose errors the attention product
      // amplifies in ways a per-layer output error does not see (the reference skips them too).
      const bool q_or_k = name.ends_with("q_proj") || name.ends_with("k_proj");
      if (recipe_.method == QuantMethod::kAwq && stats && !q_or_k) {
        const AwqClipResult clip = awq_search_clip(weight, rows, cols, stats->hessian, scheme);
        apply_clip(weight, rows, cols, scheme.group_size, clip.max_abs);
      } else if (recipe_.clip_search) {
        options.scale.search = ScaleSearch::kMse;
        if (stats) {
          importance.resize(static_cast<size_t>(cols));
          for (int64_t j = 0; j < cols; ++j) importance[j] = static_cast<float>(stats->hessian[j * cols + j]);
          options.importance = importance;
        }
      }
      return quantize_rtn(weight, rows, cols, options);
    } catch (const Error& e) {
      throw e.with_context("layer '" + name + "'");
    }
  }

  // The output head reads the final RMSNorm of the last block's output. `stored_as`: "lm_head",
  // or "model.embed_tokens" for a tied head quantized with the embedding's plan.
  void quantize_head(const std::string& stored_as) {
    std::optional<InputStatistics> stats;
    if (calibrated()) {
      stats.emplace();
      const int64_t d = model_.config().hidden_size;
      stats->cols = d;
      stats->hessian.assign(static_cast<size_t>(d * d), 0.0);
      std::vector<float> normed(static_cast<size_t>(seqlen_ * d));
      for (const auto& x : hidden_) {
        model_.final_norm(x.data(), seqlen_, normed.data());
        accumulate_hessian(stats->hessian, normed, seqlen_, d);
      }
    }
    quantize_stage({stored_as}, stats ? &*stats : nullptr);
  }

  QuantizedModelContents contents() {
    QuantizedModelContents out;
    out.config = model_.config();
    const bool head_quantized = quantized_.count("lm_head") != 0;
    if (head_quantized) out.config.tie_word_embeddings = false;
    std::set<std::string> linears;
    for (const std::string& name : model_.linear_names()) linears.insert(name);
    auto f32_tensor = [](const std::vector<float>& v, Shape shape) {
      return Tensor::copy_of(DType::kF32, std::move(shape), v.data(), v.size() * sizeof(float));
    };
    for (const auto& [name, tensor] : files_->tensors) {
      const size_t dot = name.rfind('.');
      const std::string base = name.substr(0, dot), suffix = name.substr(dot + 1);
      if (linears.count(base) && suffix == "weight") {
        if (quantized_.count(base) || sparse_.count(base)) continue;
        const LinearLayer& layer = model_.linear(base);
        out.dense.emplace_back(name, f32_tensor(dense_weight(model_, base), {layer.out_features(), layer.in_features()})
                                         .to(recipe_.plan_for(base).keep_dtype));
      } else if (linears.count(base) && suffix == "bias") {
        const LinearLayer& layer = model_.linear(base);
        const auto* q = dynamic_cast<const QuantizedLinear*>(&layer);
        const std::vector<float> bias = q ? q->bias() : dense_bias(model_, base);
        if (quantized_.count(base) || sparse_.count(base)) out.biases[base] = bias;
        else out.dense.emplace_back(name, f32_tensor(bias, {static_cast<int64_t>(bias.size())}));
      } else if (name == "model.embed_tokens.weight") {
        if (!quantized_.count("model.embed_tokens"))
          out.dense.emplace_back(name, tensor.to(recipe_.plan_for("model.embed_tokens").keep_dtype));
      } else if (name.ends_with("input_layernorm.weight") || name.ends_with("post_attention_layernorm.weight")) {
        const int64_t layer = std::stoll(name.substr(std::string("model.layers.").size()));
        const auto which = name.ends_with("input_layernorm.weight") ? LlamaModel::BlockNorm::kAttention
                                                                    : LlamaModel::BlockNorm::kMlp;
        const std::span<float> gain = model_.norm_gain(layer, which);
        out.dense.emplace_back(name, f32_tensor({gain.begin(), gain.end()}, tensor.shape()));
      } else {
        out.dense.emplace_back(name, tensor.dtype() == DType::kF32 ? tensor : tensor.to(DType::kF32));
      }
    }
    for (const auto& [name, tensor] : quantized_) out.quantized.emplace(name, *tensor);
    for (const auto& [name, tensor] : sparse_) out.sparse.emplace(name, *tensor);
    out.quantization_config = {{"method", std::string(quant_method_name(recipe_.method))},
                               {"bits", recipe_.scheme.bits()},
                               {"group_size", recipe_.scheme.group_size},
                               {"sym", !recipe_.scheme.asymmetric()},
                               {"format", recipe_.scheme.element.to_string()},
                               {"recipe", recipe_.to_json()}};
    if (recipe_.sparsity.enabled()) {
      out.quantization_config["sparsity"] = recipe_.sparsity.pattern.to_string();
      out.quantization_config["pruning_method"] = std::string(prune_method_name(recipe_.sparsity.method));
      if (!recipe_.quantize) {
        for (const char* key : {"bits", "group_size", "sym", "format"}) out.quantization_config.erase(key);
        out.quantization_config["method"] = std::string(prune_method_name(recipe_.sparsity.method));
      }
    }
    return out;
  }

  // One row per linear layer and the embeddings, in model order; kept layers at their dtype width.
  std::vector<LayerReport> ordered_reports() const {
    std::map<std::string, LayerReport> by_name;
    for (const LayerReport& r : reports_) by_name[r.name] = r;
    std::vector<LayerReport> out;
    const int64_t vocab = model_.config().vocab_size, d = model_.config().hidden_size;
    const LayerPlan embed = recipe_.plan_for("model.embed_tokens");
    if (auto it = by_name.find("model.embed_tokens"); it != by_name.end()) out.push_back(it->second);
    else out.push_back({"model.embed_tokens", embed.to_string(), vocab, d, dtype_bits(embed.keep_dtype), kNaN, 0, -1});
    for (const std::string& name : model_.linear_names()) {
      if (auto it = by_name.find(name); it != by_name.end()) {
        out.push_back(it->second);
        continue;
      }
      const LayerPlan plan = recipe_.plan_for(name);
      const LinearLayer& layer = model_.linear(name);
      const bool tied_head = name == "lm_head" && model_.config().tie_word_embeddings;
      out.push_back({name, tied_head ? "tied to model.embed_tokens" : plan.to_string(), layer.out_features(),
                     layer.in_features(), tied_head ? 0.0 : dtype_bits(plan.keep_dtype), kNaN, 0, -1});
    }
    return out;
  }

  std::shared_ptr<const ModelFiles> files_;
  const QuantRecipe& recipe_;
  const std::vector<std::vector<int32_t>>& calibration_;
  LlamaModel model_;
  int64_t seqlen_ = 0;
  std::vector<std::vector<float>> hidden_;  // per calibration sequence: [seqlen, hidden], the next block's input
  std::map<std::string, std::shared_ptr<const QuantizedTensor>> quantized_;
  std::map<std::string, std::shared_ptr<const SparseTensor>> sparse_;
  std::map<std::string, double> alpha_;
  std::vector<LayerReport> reports_;
};

}  // namespace

QuantizeResult quantize_model(std::shared_ptr<const ModelFiles> files, const QuantRecipe& recipe,
                              const std::vector<std::vector<int32_t>>& calibration,
                              const std::function<void(const BlockProgress&)>& progress) {
  if (files->quantized())
    throw Error(files->path, "is already quantized; quantize the unquantized original instead");
  SequentialQuantizer quantizer(std::move(files), recipe, calibration);
  return quantizer.run(progress);
}

}  // namespace lowbit
