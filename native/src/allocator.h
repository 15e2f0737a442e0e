// CPU memory for tensors. glibc is tuned to keep freed blocks, and libtorch's CPU allocator is
// replaced by a size-class cache of large blocks (allocator.cc), so that the activations a step
// frees are reused by the next step instead of being page-faulted in again.
// DYAD_CPU_CACHING_ALLOCATOR=0 keeps libtorch's allocator; DYAD_CPU_CACHE_MB caps the idle bytes.
#pragma once

#include <cstddef>

namespace dyad {

/// Installs the malloc tuning and the caching allocator; once per process, before any tensor.
void installAllocators();
/// Bytes of freed blocks the cache holds for reuse (torch.memory().cachedBytes).
size_t cpuCacheIdleBytes();
/// Frees every idle cached block (torch.emptyCache()).
void emptyCpuCache();

}  // namespace dyad
