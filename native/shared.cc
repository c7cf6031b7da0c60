// The only V8 C++ API in pymalloc, for the shared-heap addon (pymalloc_shared.node; see "Shared reservations"
// in native/shim.cc). Node 20's and 22's Node-API cannot make a SharedArrayBuffer over memory it did not
// allocate, nor tell a SharedArrayBuffer's backing store, so these two steps use V8 directly. Where the running
// Node.js has node_api_create_external_sharedarraybuffer (26.1 and later, recent 24.x), the main addon does them with
// Node-API instead (native/shared_napi.cc) and this addon is not loaded.
//
// ABI coupling, accepted in this addon only: this file is compiled against one Node.js version's V8 headers and
// is valid in that major version only (the addon refuses to load in another: SameNodeMajor in shim.cc, and the
// loader compares buildInfo with process.versions.modules and V8's pointer-compression and sandbox settings). It
// relies on Node's Node-API implementation representing a napi_value as a v8::Local<v8::Value> (a pointer to a
// handle-scope slot, reinterpret-cast both ways, as Node's own js_native_api_v8.h does), and on the
// std::shared_ptr<v8::BackingStore> of the C++ runtime Node itself uses (libstdc++ on Linux). The main addon
// (pymalloc.node) must not use any of this: it stays on the ABI-stable C Node-API.
//
// Nothing here throws or aborts on anything JavaScript passes: a value that is not a SharedArrayBuffer is
// reported as such; V8 itself only aborts when it is out of memory, as any allocation of a JS object would.
#include "shared.h"

// node_version.h defines NAPI_VERSION as the runtime's own; this addon keeps the NAPI_VERSION it is built with.
#pragma push_macro("NAPI_VERSION")
#undef NAPI_VERSION
#include <node_version.h>
#undef NAPI_VERSION
#pragma pop_macro("NAPI_VERSION")
#include <v8.h>

#include <cstring>
#include <memory>
#include <utility>

namespace pymalloc::shared {

namespace {

static_assert(sizeof(v8::Local<v8::Value>) == sizeof(napi_value), "napi_value is a v8::Local in Node");

v8::Local<v8::Value> ToLocal(napi_value value) {
  v8::Local<v8::Value> local;
  std::memcpy(static_cast<void*>(&local), &value, sizeof(value));
  return local;
}

napi_value FromLocal(v8::Local<v8::Value> local) {
  napi_value value = nullptr;
  std::memcpy(static_cast<void*>(&value), &local, sizeof(value));
  return value;
}

}  // namespace

#ifdef V8_COMPRESS_POINTERS
constexpr bool kPointerCompression = true;
#else
constexpr bool kPointerCompression = false;
#endif
#ifdef V8_ENABLE_SANDBOX
constexpr bool kSandbox = true;
#else
constexpr bool kSandbox = false;
#endif

const BuildInfo kBuildInfo = {NODE_MAJOR_VERSION, NODE_MODULE_VERSION, NODE_VERSION, kPointerCompression, kSandbox};

bool Available() noexcept { return !kSandbox; }

const char* const kProvider = "v8";

napi_value NewSharedArrayBuffer(napi_env, void* data, size_t length, Deleter deleter, void* deleter_data,
                                bool* store_made) noexcept {
  *store_made = false;
  // Inside V8's sandbox a backing store must live in the sandbox: V8 would abort on memory mapped elsewhere.
  if (kSandbox) return nullptr;
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr || data == nullptr || length == 0) return nullptr;
  try {
    std::unique_ptr<v8::BackingStore> store =
        v8::SharedArrayBuffer::NewBackingStore(data, length, deleter, deleter_data);
    if (!store) return nullptr;
    *store_made = true;
    // If making the shared_ptr's control block throws, `store` still owns the backing store and its destructor
    // runs the deleter: the caller's hold is given back either way.
    std::shared_ptr<v8::BackingStore> shared(std::move(store));
    v8::Local<v8::SharedArrayBuffer> buffer = v8::SharedArrayBuffer::New(isolate, std::move(shared));
    if (buffer.IsEmpty()) return nullptr;
    return FromLocal(buffer);
  } catch (...) {
    return nullptr;
  }
}

BufferInfo InspectBuffer(napi_env, napi_value value) noexcept {
  BufferInfo info;
  if (value == nullptr) return info;
  v8::Local<v8::Value> local = ToLocal(value);
  if (local->IsSharedArrayBuffer()) {
    v8::Local<v8::SharedArrayBuffer> buffer = local.As<v8::SharedArrayBuffer>();
    info.kind = BufferKind::kSharedArrayBuffer;
    info.data = buffer->Data();
    info.length = buffer->ByteLength();
  } else if (local->IsArrayBuffer()) {
    info.kind = BufferKind::kArrayBuffer;
  }
  return info;
}

}  // namespace pymalloc::shared
