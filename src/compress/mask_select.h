// The selection rule every pruning criterion shares (sparsity.h): keep the largest scores, prune
// the rest, ties pruning the lower column first — so masks are deterministic. Internal to compress.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::compress_detail {

// mask[0..count) = 1 except for the `prune` smallest scores (ordered by (score, index)), which get
// 0. `order` is scratch space.
void keep_largest(const float* scores, int64_t count, int64_t prune, uint8_t* mask, std::vector<int64_t>& order);

}  // namespace lowbit::compress_detail
