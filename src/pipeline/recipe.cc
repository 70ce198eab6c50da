#include "lowbit/pipeline/recipe.h"

#include <fnmatch.h>

#include <charconv>
#include <set>

#include "lowbit/core/error.h"
#include "lowbit/io/quantized_layout.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

// Kept layers and scales share one vocabulary of float dtypes (io/quantized_layout.h).
DType parse_keep_dtype(std::string_view text, const std::string& where) {
  if (const auto dtype = parse_scale_dtype(text)) return *dtype;
  throw Error(where, "keep '" + std::string(text) + "' is not f32, f16 or bf16");
}

void refuse_unknown_keys(const json& object, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : object.items())
    if (!known.count(key)) throw Error(where, "unknown key '" + key + "'");
}

template <class T>
T get(const json& object, const char* key, const std::string& where) {
  try {
    return object.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(where, "'" + std::string(key) + "' has the wrong type");
  }
}

// {"format", "group_size", "scale_dtype", "signed_scales"} over a base scheme (missing keys keep the base's).
QuantScheme scheme_from_json(const json& object, QuantScheme base, const std::string& where) {
  try {
    if (object.contains("format")) base.element = Format::parse(get<std::string>(object, "format", where));
  } catch (const Error& e) {
    throw Error(where, e.what());
  }
  if (object.contains("group_size")) base.group_size = get<int64_t>(object, "group_size", where);
  if (object.contains("scale_dtype")) {
    const std::string text = get<std::string>(object, "scale_dtype", where);
    const auto dtype = parse_scale_dtype(text, true);
    if (!dtype) throw Error(where, "scale_dtype '" + text + "' is not f16, bf16, f32, ue4m3 or e8m0");
    base.scale_dtype = *dtype;
  }
  if (object.contains("signed_scales")) base.signed_scales = get<bool>(object, "signed_scales", where);
  if (base.bits() < 1 || base.bits() > 8)
    throw Error(where, "format " + base.element.to_string() + " has " + std::to_string(base.bits()) + " bits; weights take 1..8");
  if (base.group_size < 0) throw Error(where, "group_size must be >= 0 (0 = per row), found " + std::to_string(base.group_size));
  return base;
}

json scheme_to_json(const QuantScheme& s) {
  json j = {{"format", s.element.to_string()}, {"group_size", s.group_size}, {"scale_dtype", scale_dtype_name(s.scale_dtype)}};
  if (s.signed_scales) j["signed_scales"] = true;
  return j;
}

}  // namespace

std::string_view quant_method_name(QuantMethod method) {
  switch (method) {
    case QuantMethod::kRtn: return "rtn";
    case QuantMethod::kGptq: return "gptq";
    case QuantMethod::kAwq: return "awq";
    case QuantMethod::kAwqGptq: return "awq+gptq";
  }
  return "?";
}

QuantMethod parse_quant_method(std::string_view name) {
  for (QuantMethod m : {QuantMethod::kRtn, QuantMethod::kGptq, QuantMethod::kAwq, QuantMethod::kAwqGptq})
    if (quant_method_name(m) == name) return m;
  throw Error("method '" + std::string(name) + "' is not one of rtn, gptq, awq, awq+gptq");
}

bool needs_calibration(QuantMethod method) { return method != QuantMethod::kRtn; }

std::string_view prune_method_name(PruneMethod method) {
  switch (method) {
    case PruneMethod::kNone: return "none";
    case PruneMethod::kMagnitude: return "magnitude";
    case PruneMethod::kWanda: return "wanda";
    case PruneMethod::kSparseGpt: return "sparsegpt";
  }
  return "?";
}

PruneMethod parse_prune_method(std::string_view name) {
  for (PruneMethod m : {PruneMethod::kNone, PruneMethod::kMagnitude, PruneMethod::kWanda, PruneMethod::kSparseGpt})
    if (prune_method_name(m) == name) return m;
  throw Error("pruning method '" + std::string(name) + "' is not one of magnitude, wanda, sparsegpt");
}

std::string SparsityRecipe::to_string() const {
  std::string s = pattern.to_string() + " " + std::string(prune_method_name(method));
  if (method == PruneMethod::kMagnitude && scope == MaskScope::kLayer && !pattern.nm()) s += " (per layer)";
  return s;
}

std::string LayerPlan::to_string() const {
  if (sparse) return sparsity + ", " + (quantize ? scheme.to_string() : scale_dtype_name(keep_dtype));
  return quantize ? scheme.to_string() : "kept " + scale_dtype_name(keep_dtype);
}

LayerPlan QuantRecipe::plan_for(const std::string& name) const {
  LayerPlan plan;
  plan.scheme = scheme;
  const bool head_or_embedding = name == "lm_head" || name == "model.embed_tokens";
  if (head_or_embedding) plan.quantize = false;
  bool kept_by_rule = false, scheme_by_rule = false;
  for (const QuantRule& rule : rules)
    if (::fnmatch(rule.pattern.c_str(), name.c_str(), 0) == 0) {
      plan = rule.plan;
      kept_by_rule = !rule.plan.quantize;
      scheme_by_rule = rule.plan.quantize;
    }
  if (sparsity.enabled() && !head_or_embedding && !kept_by_rule) {
    plan.sparse = true;
    plan.sparsity = sparsity.to_string();
    if (!quantize && !scheme_by_rule) {
      // Prune only: the layer keeps float values (a rule may still give it a grid of its own).
      plan.quantize = false;
      plan.keep_dtype = sparse_dtype;
    }
  }
  return plan;
}

QuantRecipe QuantRecipe::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where, "a recipe is a JSON object");
  refuse_unknown_keys(j, {"method", "scheme", "gptq", "clip_search", "layers", "sparsity", "quantize", "sparse_dtype"}, where);
  QuantRecipe r;
  if (j.contains("method")) {
    try {
      r.method = parse_quant_method(get<std::string>(j, "method", where));
    } catch (const Error& e) {
      throw Error(where, e.what());
    }
  }
  if (j.contains("scheme")) {
    const std::string at = where + ": scheme";
    if (!j["scheme"].is_object()) throw Error(at, "must be an object");
    refuse_unknown_keys(j["scheme"], {"format", "group_size", "scale_dtype", "signed_scales"}, at);
    r.scheme = scheme_from_json(j["scheme"], r.scheme, at);
  }
  if (j.contains("gptq")) {
    const std::string at = where + ": gptq";
    const json& g = j["gptq"];
    if (!g.is_object()) throw Error(at, "must be an object");
    refuse_unknown_keys(g, {"percdamp", "block_size", "act_order", "static_groups"}, at);
    if (g.contains("percdamp")) r.gptq.percdamp = get<double>(g, "percdamp", at);
    if (g.contains("block_size")) r.gptq.block_size = get<int64_t>(g, "block_size", at);
    if (g.contains("act_order")) r.gptq.act_order = get<bool>(g, "act_order", at);
    if (g.contains("static_groups")) r.gptq.static_groups = get<bool>(g, "static_groups", at);
    if (!(r.gptq.percdamp >= 0)) throw Error(at, "percdamp must be >= 0");
    if (r.gptq.block_size < 1) throw Error(at, "block_size must be >= 1");
  }
  if (j.contains("clip_search")) r.clip_search = get<bool>(j, "clip_search", where);
  if (j.contains("quantize")) r.quantize = get<bool>(j, "quantize", where);
  if (j.contains("sparse_dtype")) r.sparse_dtype = parse_keep_dtype(get<std::string>(j, "sparse_dtype", where), where + ": sparse_dtype");
  if (j.contains("sparsity")) {
    const std::string at = where + ": sparsity";
    const json& sp = j["sparsity"];
    if (!sp.is_object()) throw Error(at, "must be an object");
    refuse_unknown_keys(sp, {"method", "pattern", "scope"}, at);
    try {
      if (sp.contains("method")) r.sparsity.method = parse_prune_method(get<std::string>(sp, "method", at));
      if (sp.contains("pattern")) r.sparsity.pattern = SparsityPattern::parse(get<std::string>(sp, "pattern", at));
    } catch (const Error& e) {
      throw Error(at, e.what());
    }
    if (sp.contains("scope")) {
      const std::string scope = get<std::string>(sp, "scope", at);
      if (scope != "row" && scope != "layer") throw Error(at, "scope must be \"row\" or \"layer\", found \"" + scope + "\"");
      r.sparsity.scope = scope == "layer" ? MaskScope::kLayer : MaskScope::kRow;
    }
  }
  if (!r.quantize && !r.sparsity.enabled())
    throw Error(where, "\"quantize\": false needs a pruning method in \"sparsity\" (otherwise nothing would change)");
  if (j.contains("layers")) {
    if (!j["layers"].is_array()) throw Error(where, "'layers' must be an array of rules");
    for (size_t i = 0; i < j["layers"].size(); ++i) {
      const json& rule = j["layers"][i];
      const std::string at = where + ": layers[" + std::to_string(i) + "]";
      if (!rule.is_object()) throw Error(at, "must be an object");
      refuse_unknown_keys(rule, {"match", "keep", "format", "group_size", "scale_dtype", "signed_scales"}, at);
      if (!rule.contains("match")) throw Error(at, "needs 'match' (a glob over layer names)");
      QuantRule out;
      out.pattern = get<std::string>(rule, "match", at);
      if (rule.contains("keep")) {
        if (rule.size() != 2) throw Error(at, "'keep' excludes format, group_size and scale_dtype");
        out.plan.quantize = false;
        out.plan.keep_dtype = parse_keep_dtype(get<std::string>(rule, "keep", at), at);
      } else {
        out.plan.scheme = scheme_from_json(rule, r.scheme, at);
      }
      r.rules.push_back(std::move(out));
    }
  }
  return r;
}

json QuantRecipe::to_json() const {
  json layers = json::array();
  for (const QuantRule& rule : rules) {
    json entry = rule.plan.quantize ? scheme_to_json(rule.plan.scheme) : json{{"keep", scale_dtype_name(rule.plan.keep_dtype)}};
    entry["match"] = rule.pattern;
    layers.push_back(entry);
  }
  json out = {{"method", std::string(quant_method_name(method))},
              {"scheme", scheme_to_json(scheme)},
              {"gptq", {{"percdamp", gptq.percdamp}, {"block_size", gptq.block_size}, {"act_order", gptq.act_order},
                        {"static_groups", gptq.static_groups}}},
              {"clip_search", clip_search},
              {"layers", layers}};
  if (sparsity.enabled()) {
    out["sparsity"] = {{"method", std::string(prune_method_name(sparsity.method))},
                       {"pattern", sparsity.pattern.to_string()},
                       {"scope", sparsity.scope == MaskScope::kLayer ? "layer" : "row"}};
    out["quantize"] = quantize;
    out["sparse_dtype"] = scale_dtype_name(sparse_dtype);
  }
  return out;
}

QuantRule parse_keep_rule(std::string_view text, const QuantScheme& base) {
  const std::string where = "--keep " + std::string(text);
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    throw Error(where, "expected NAME=f16|bf16|f32|BITS, e.g. lm_head=f16 or '*.down_proj=8'");
  QuantRule rule;
  rule.pattern = std::string(text.substr(0, eq));
  const std::string_view value = text.substr(eq + 1);
  int bits = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bits);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (bits < 2 || bits > 8) throw Error(where, "bit width must be 2..8, found " + std::to_string(bits));
    rule.plan.scheme = base;
    rule.plan.scheme.element = base.asymmetric() ? Format::uint(bits) : Format::int_symmetric(bits);
  } else {
    rule.plan.quantize = false;
    rule.plan.keep_dtype = parse_keep_dtype(value, where);
  }
  return rule;
}

}  // namespace lowbit
