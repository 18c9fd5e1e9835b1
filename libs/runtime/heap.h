#ifndef SEQUENCES_LIBS_RUNTIME_HEAP_H_
#define SEQUENCES_LIBS_RUNTIME_HEAP_H_

// The services' heap, for their main(): jemalloc in the release binaries (a target defines
// SEQUENCES_JEMALLOC when it links it; CMakeLists.txt), glibc's malloc in sanitizer builds. Header
// only: which allocator is the including binary's, so this is compiled into it.

#include <cstddef>

#ifdef SEQUENCES_JEMALLOC
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen);
#else
#include <malloc.h>
#endif

namespace sequences {

// Returns freed heap pages to the system now: every jemalloc arena's
// (arena.<MALLCTL_ARENAS_ALL>.purge), or glibc's.
inline void PurgeHeap() {
#ifdef SEQUENCES_JEMALLOC
  mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
#else
  malloc_trim(0);
#endif
}

}  // namespace sequences

#endif  // SEQUENCES_LIBS_RUNTIME_HEAP_H_
