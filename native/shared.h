// How a shared reservation gets its SharedArrayBuffer: the two things Node 20's Node-API cannot do. native/shim.cc
// calls only these, and each addon links one implementation of them:
//   pymalloc.node         native/shared_napi.cc: Node-API's node_api_create_external_sharedarraybuffer (Node.js
//                         26.1 and later, and recent 24.x releases), found at load time in the running Node.js, so the one ABI-stable build
//                         (and its prebuild) has shared heaps wherever the running Node.js has that call;
//   pymalloc_shared.node  native/shared.cc: V8's C++ API, for Node.js 20 and 22, built for one Node.js version.
#ifndef PYMALLOC_SHARED_H
#define PYMALLOC_SHARED_H

#include <node_api.h>

#include <cstddef>

namespace pymalloc::shared {

// Runs once the backing store is gone, on any thread (V8's: maybe a background one, or an isolate's teardown).
using Deleter = void (*)(void* data, size_t length, void* deleter_data);

// Whether this addon can make and inspect SharedArrayBuffers in the running Node.js. The shim exports the shared
// reservation functions only where it can.
bool Available() noexcept;

// How: "node-api" or "v8" (exported as `sharedArrayBuffers`, for the loader and the tests).
extern const char* const kProvider;

// A SharedArrayBuffer over [data, data + length), made in the current environment (call it from a JS callback).
// Once *store_made is true, `deleter` runs exactly once, whatever is returned. Null when nothing could be made.
napi_value NewSharedArrayBuffer(napi_env env, void* data, size_t length, Deleter deleter, void* deleter_data,
                                bool* store_made) noexcept;

enum class BufferKind { kOther, kArrayBuffer, kSharedArrayBuffer };

struct BufferInfo {
  BufferKind kind = BufferKind::kOther;
  const void* data = nullptr;  // a SharedArrayBuffer's backing store: its data and byte length
  size_t length = 0;
};

// What `value` is; for a SharedArrayBuffer, where its memory is. Reads nothing of that memory.
BufferInfo InspectBuffer(napi_env env, napi_value value) noexcept;

#ifdef PYMALLOC_SHARED_ADDON
// What the V8 addon was built against (the headers of one Node.js version).
struct BuildInfo {
  int node_major;
  int node_module_version;
  const char* node_version;  // "v20.20.2"
  bool pointer_compression;
  bool sandbox;
};

extern const BuildInfo kBuildInfo;
#endif

}  // namespace pymalloc::shared

#endif
