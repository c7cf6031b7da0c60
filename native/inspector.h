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

// Which pages of the reservation may be read: all of a 'readwrite' reservation, or, of a 'none' one, the pages
// whose bit is set (the shim keeps one bit per page of `page_size` bytes, set while the page is readable; any
// other page is PROT_NONE and reading it would fault).
struct CommittedPages {
  bool all;                           // a 'readwrite' reservation: every page of [0, size) is readable
  const std::vector<uint64_t>* bits;  // null: nothing is committed
  uint64_t page_size;
  uint64_t size;                      // bytes of the reservation

  // True when every page of [offset, offset + bytes) lies in the reservation and is readable (bytes > 0).
  bool Contains(uint64_t offset, uint64_t bytes) const;
};

// Walks the heap whose reservation is [base, base + size), reading only committed pages. Returns false with a
// message on a corrupt heap (or memory that is not a heap): nothing in the heap's memory is trusted.
bool InspectHeap(const char* base, uint64_t size, const CommittedPages& committed, HeapCounts* out,
                 std::string* error);

}  // namespace pymalloc

#endif
