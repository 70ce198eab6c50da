// Level tables of the lookup formats (NF4, NF3, logarithmic). Internal to the numerics module;
// users see them through Format::levels().
#pragma once

#include <span>
#include <vector>

namespace lowbit {

// QLoRA NormalFloat4 (Dettmers et al. 2023, "QLoRA", appendix E), exactly the 16 float32 values
// bitsandbytes ships (functional.py create_normal_map(offset=0.9677083)): normal quantiles
// Φ^-1 of 8 evenly spaced probabilities from `offset` to 1/2 on the positive side and 7 on the
// negative side, plus an exact 0, divided by the largest so that the range is [-1, 1].
std::span<const float> nf4_levels();
// The same construction with 4 positive and 3 negative quantiles and offset
// (1 - 1/(2*7) + 1 - 1/(2*8)) / 2 = 0.93303571, the n = 8 instance of QLoRA's
// offset = average of 1 - 1/(2(n-1)) and 1 - 1/(2n) (0.9677083 for n = 16).
std::span<const float> nf3_levels();
// 0 and ±2^(-k) (or ±2^(-k/2) with sqrt2), k = 0 .. 2^(bits-1) - 2, ascending.
std::vector<float> logarithmic_levels(int bits, bool sqrt2);

}  // namespace lowbit
