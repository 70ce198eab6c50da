// Streaming-read bandwidth of this machine, measured in the same run as a benchmark so
// that speed can be reported as a fraction of the roofline rather than as a bare number.
#pragma once

#include <cstddef>

namespace lowbit {

// Bytes per second reading a buffer of `bytes` (much larger than the caches) with the
// current thread count; best of `repeats` passes.
double measure_read_bandwidth(size_t bytes = size_t{512} << 20, int repeats = 3);

}  // namespace lowbit
