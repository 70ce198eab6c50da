// Budget allocation: the greedy stays within the budget, cannot upgrade any tensor further, spends
// where the error drops most per bit, refuses impossible budgets; plan_budget measures every tensor
// of a real model and never exceeds the budget, and a larger budget never costs error.
#include "lowbit/pipeline/budget.h"

#include <gtest/gtest.h>

#include <memory>

#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/core/error.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/pipeline/calibration.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

double spent(const std::vector<BudgetItem>& items, const std::vector<size_t>& chosen) {
  double bits = 0, weights = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    bits += static_cast<double>(items[i].weights) * items[i].bits[chosen[i]];
    weights += static_cast<double>(items[i].weights);
  }
  return bits / weights;
}

TEST(Budget, GreedyStaysWithinAndSpendsWhereErrorDropsMost) {
  const std::vector<double> ladder = {4.5, 5.5, 8.5};
  std::vector<BudgetItem> items = {
      {"sensitive", 100, ladder, {1.0, 0.2, 0.01}},   // drops 0.8 for 100 extra bits
      {"robust", 100, ladder, {0.1, 0.08, 0.07}},     // drops 0.02
      {"large", 1000, ladder, {0.5, 0.3, 0.1}},       // drops 0.2 for 1000 extra bits
  };
  // 1200 weights: 4.5 everywhere, plus 100 bits buy one rung of a small tensor.
  const double one_small_rung = (1200 * 4.5 + 100) / 1200;
  EXPECT_EQ(allocate_budget(items, one_small_rung), (std::vector<size_t>{1, 0, 0}));
  EXPECT_EQ(allocate_budget(items, 4.5), (std::vector<size_t>{0, 0, 0}));
  EXPECT_EQ(allocate_budget(items, 8.5), (std::vector<size_t>{2, 2, 2}));
  for (double budget : {4.6, 5.0, 5.5, 6.0, 7.0, 8.0}) {
    const auto chosen = allocate_budget(items, budget);
    EXPECT_LE(spent(items, chosen), budget + 1e-12) << budget;
    // Maximal: no single further upgrade fits.
    for (size_t i = 0; i < items.size(); ++i)
      if (chosen[i] + 1 < ladder.size()) {
        auto more = chosen;
        ++more[i];
        EXPECT_GT(spent(items, more), budget) << budget << " " << items[i].name;
      }
  }
  try {
    allocate_budget(items, 4.0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--budget: 4.0000 bits per weight is below the cheapest grids' 4.5000");
  }
}

TEST(Budget, PlanMeasuresEveryTensorOfARealModelWithinTheBudget) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/hf"));
  const auto tokenizer = load_tokenizer(*files);
  const auto calibration = sample_calibration(tokenizer->encode("Once upon a time there was a little girl named Lily. "
                                                                 "She loved to play outside in the sunshine. One day she saw a big dog. "
                                                                 "The dog was friendly and they played together all day long. "
                                                                 "When the sun went down, Lily went home and told her mom about her new friend.",
                                                                 false),
                                              CalibrationOptions{4, 32, 0});
  std::vector<QuantScheme> candidates;
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ8_0}) candidates.push_back(*ggml_block_scheme(type));
  const BudgetPlan plan = plan_budget(files, candidates, 5.0, calibration);
  // 5 blocks x 6 linears with rows of 64 inputs, and the table; down_proj's 172 inputs are left out.
  ASSERT_EQ(plan.items.size(), 31u);
  EXPECT_EQ(plan.schemes.size(), 31u);
  EXPECT_EQ(plan.schemes.count("model.layers.0.mlp.down_proj"), 0u);
  EXPECT_EQ(plan.schemes.count("model.embed_tokens"), 1u);
  EXPECT_LE(plan.bits_per_weight, 5.0 + 1e-12);
  EXPECT_GT(plan.bits_per_weight, 4.5);
  for (size_t i = 0; i < plan.items.size(); ++i) {
    const BudgetItem& item = plan.items[i];
    ASSERT_EQ(item.bits, (std::vector<double>{4.5, 5.5, 8.5})) << item.name;
    for (size_t k = 1; k < item.errors.size(); ++k) EXPECT_LT(item.errors[k], item.errors[k - 1]) << item.name;
    EXPECT_EQ(plan.schemes.at(item.name).element, candidates[plan.chosen[i]].element) << item.name;
  }
  double previous_error = HUGE_VAL;
  for (double budget : {4.5, 5.0, 6.0, 8.5}) {
    const auto chosen = allocate_budget(plan.items, budget);
    EXPECT_LE(spent(plan.items, chosen), budget + 1e-12);
    double error = 0;
    for (size_t i = 0; i < plan.items.size(); ++i) error += plan.items[i].errors[chosen[i]];
    EXPECT_LE(error, previous_error) << budget;
    previous_error = error;
  }
}

}  // namespace
}  // namespace lowbit
