// The heap inspector's C++ interface (see inspector.cc). It takes the reservation's own mapping, never an
// address from JavaScript.
#ifndef PYMALLOC_INSPECTOR_H
#define PYMALLOC_INSPECTOR_H

#include <cstdint>
#include <string>
#include <vector>

namespace pymalloc {

struct ClassCounts {
  uint64_t pools = 0;
  uint64_t blocks = 0;
};

struct HeapCounts {
  std::vector<ClassCounts> classes;  // per size class: pools in use and blocks in use
  uint64_t arenas = 0;               // associated arenas
  uint64_t usableArenas = 0;         // arenas on usable_arenas
  uint64_t freePools = 0;            // sum of nfreepools
  uint64_t usedPoolsListed = 0;      // pools on the usedpools lists
  uint64_t fullPools = 0;            // used pools with no free block
};

// Walks the heap whose reservation is [base, base + size). Returns false with a message on a corrupt heap.
bool InspectHeap(const char* base, uint64_t size, HeapCounts* out, std::string* error);

}  // namespace pymalloc

#endif
