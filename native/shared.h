// The V8 half of the shared-heap addon (pymalloc_shared.node): the two things Node-API cannot do in Node 20.
// native/shim.cc, compiled with PYMALLOC_SHARED_ADDON, calls these; nothing else in pymalloc uses V8's C++ API.
#ifndef PYMALLOC_SHARED_H
#define PYMALLOC_SHARED_H

#include <node_api.h>

#include <cstddef>

namespace pymalloc::shared {

// Runs once the backing store is gone, on any thread (V8's: maybe a background one, or an isolate's teardown).
using Deleter = void (*)(void* data, size_t length, void* deleter_data);

// A SharedArrayBuffer over [data, data + length), made in the current isolate (call it from a JS callback).
// Once a backing store exists *store_made is true: `deleter` then runs exactly once, whatever is returned. Null
// when nothing could be made.
napi_value NewSharedArrayBuffer(void* data, size_t length, Deleter deleter, void* deleter_data,
                                bool* store_made) noexcept;

enum class BufferKind { kOther, kArrayBuffer, kSharedArrayBuffer };

struct BufferInfo {
  BufferKind kind = BufferKind::kOther;
  const void* data = nullptr;  // a SharedArrayBuffer's backing store: its data and byte length
  size_t length = 0;
};

// What `value` is; for a SharedArrayBuffer, where its memory is. Reads nothing of that memory.
BufferInfo InspectBuffer(napi_value value) noexcept;

// What this addon was built against (the headers of one Node.js version).
struct BuildInfo {
  int node_major;
  int node_module_version;
  const char* node_version;  // "v20.20.2"
  bool pointer_compression;
  bool sandbox;
};

extern const BuildInfo kBuildInfo;

}  // namespace pymalloc::shared

#endif
