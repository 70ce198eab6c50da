// The io half of the lowbit quantized layout: the shapes a layer entry implies and the checks on
// quantization_config (folders end to end are in pipeline/quantized_model_test.cc).
#include "lowbit/io/quantized_layout.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using nlohmann::json;
using testing::error_from;

json layer_entry() {
  return {{"format", "uint3"}, {"group_size", 32}, {"scale_dtype", "bf16"}, {"in_features", 100}, {"out_features", 7}};
}

json config_with(const json& layer) {
  return {{"quant_method", "lowbit"}, {"format_version", 1}, {"bits", 3}, {"layers", {{"model.layers.0.mlp.up_proj", layer}}}};
}

TEST(QuantizedLayout, EntryImpliesPartShapes) {
  const auto layers = parse_quantization_config(config_with(layer_entry()), "config.json");
  ASSERT_EQ(layers.size(), 1u);
  const QuantizedLayerSpec& spec = layers.at("model.layers.0.mlp.up_proj");
  EXPECT_EQ(spec.format.to_string(), "uint3");
  EXPECT_TRUE(spec.asymmetric());
  EXPECT_EQ(spec.scale_dtype, DType::kBF16);
  EXPECT_EQ(spec.groups(), 4);          // 32 + 32 + 32 + 4 columns
  EXPECT_EQ(spec.row_bytes(), 38);      // ceil(100 * 3 / 8)
  EXPECT_EQ(spec.zero_row_bytes(), 2);  // ceil(4 * 3 / 8)
  const auto parts = quantized_parts("x", spec);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].name, "x.qweight");
  EXPECT_EQ(parts[0].dtype, DType::kU8);
  EXPECT_EQ(parts[0].shape, (Shape{7, 38}));
  EXPECT_EQ(parts[1].name, "x.scales");
  EXPECT_EQ(parts[1].dtype, DType::kBF16);
  EXPECT_EQ(parts[1].shape, (Shape{7, 4}));
  EXPECT_EQ(parts[2].name, "x.qzeros");
  EXPECT_EQ(parts[2].shape, (Shape{7, 2}));
  EXPECT_EQ(parts[3].name, "x.g_idx");
  EXPECT_EQ(parts[3].dtype, DType::kI32);
  EXPECT_EQ(parts[3].shape, (Shape{100}));
  EXPECT_FALSE(parts[3].required);
  // Written back, the entry is the same JSON.
  EXPECT_EQ(quantized_layer_json(spec), layer_entry());

  // Per row, symmetric: one scale per row and no zero points.
  json per_row = layer_entry();
  per_row["format"] = "int4";
  per_row["group_size"] = 0;
  const QuantizedLayerSpec symmetric = parse_quantization_config(config_with(per_row), "c").begin()->second;
  EXPECT_FALSE(symmetric.asymmetric());
  EXPECT_EQ(symmetric.groups(), 1);
  EXPECT_EQ(quantized_parts("y", symmetric).size(), 3u);  // qweight, scales, g_idx (optional)
}

TEST(QuantizedLayout, MalformedConfigsAreOneLineErrors) {
  EXPECT_EQ(error_from([] { parse_quantization_config(json{{"quant_method", "awq"}}, "m/config.json"); }),
            "m/config.json: quantization_config.quant_method 'awq' is not supported (lowbit reads 'lowbit')");
  EXPECT_EQ(error_from([] { parse_quantization_config(json{{"bits", 4}}, "c.json"); }),
            "c.json: quantization_config: has no \"quant_method\" string");
  EXPECT_EQ(error_from([] { parse_quantization_config(json{{"quant_method", "lowbit"}, {"format_version", 1}}, "c.json"); }),
            "c.json: quantization_config: has no \"layers\" object");
  json layer = layer_entry();
  layer.erase("in_features");
  EXPECT_EQ(error_from([&] { parse_quantization_config(config_with(layer), "c.json"); }),
            "c.json: quantization_config.layers['model.layers.0.mlp.up_proj']: missing \"in_features\"");
  layer = layer_entry();
  layer["out_features"] = "7";
  EXPECT_EQ(error_from([&] { parse_quantization_config(config_with(layer), "c.json"); }),
            "c.json: quantization_config.layers['model.layers.0.mlp.up_proj']: \"out_features\" must be an integer, found \"7\"");
  layer = layer_entry();
  layer["format"] = "fp16";
  EXPECT_EQ(error_from([&] { parse_quantization_config(config_with(layer), "c.json"); }),
            "c.json: quantization_config.layers['model.layers.0.mlp.up_proj']: format fp16 has 16 bits; quantized layers hold 1..8");
  layer = layer_entry();
  layer["group_size"] = -1;
  EXPECT_EQ(error_from([&] { parse_quantization_config(config_with(layer), "c.json"); }),
            "c.json: quantization_config.layers['model.layers.0.mlp.up_proj']: \"group_size\" must be 0 (per row) .. "
            "in_features 100, found -1");
}

}  // namespace
}  // namespace lowbit
