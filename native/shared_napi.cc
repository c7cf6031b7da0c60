// SharedArrayBuffers through Node-API, for the main addon (pymalloc.node; see "Shared reservations" in
// native/shim.cc and native/shared.h). Node.js 26.1 added node_api_create_external_sharedarraybuffer, and later
// 24.x releases have it too (24.22.3 does), with node_api_is_sharedarraybuffer and napi_get_arraybuffer_info
// accepting a SharedArrayBuffer. They are still experimental (NAPI_EXPERIMENTAL), and the addon is built with
// NAPI_VERSION 8 against older headers, so it declares them itself, as weak symbols: the dynamic loader binds
// them to the running node executable's when it exports them, and to null when it does not. Where one is missing
// (Node.js 20 and 22) Available() is false, the shim exports no shared-reservation function, and the loader falls
// back to the V8 addon (native/shared.cc). Their signatures are those of Node.js 26's js_native_api.h;
// experimental Node-API functions are renamed, not changed in place, when their contract changes.
#include <atomic>
#include <new>

#include "shared.h"

using NoEnvFinalize = void (*)(void* data, void* hint);

extern "C" {
__attribute__((weak)) napi_status NAPI_CDECL node_api_create_external_sharedarraybuffer(
    napi_env env, void* external_data, size_t byte_length, NoEnvFinalize finalize_cb, void* finalize_hint,
    napi_value* result);
__attribute__((weak)) napi_status NAPI_CDECL node_api_is_sharedarraybuffer(napi_env env, napi_value value,
                                                                         bool* result);
}

namespace pymalloc::shared {

namespace {

bool HaveApi() noexcept {
  return &node_api_create_external_sharedarraybuffer != nullptr && &node_api_is_sharedarraybuffer != nullptr;
}

// The finalizer's argument. Node-API does not say whether a failed call will still run the finalizer (it would if
// the backing store was made before the failure), so the caller's deleter runs through this one-shot: whichever of
// the finalizer and a failed call's cleanup comes first runs it, and the last of the two frees the record.
struct StoreHold {
  Deleter deleter;
  void* deleter_data;
  void* data;
  size_t length;
  std::atomic<bool> fired{false};
  std::atomic<int> refs{2};  // the finalizer's and the caller's
};

void Fire(StoreHold* hold) noexcept {
  if (!hold->fired.exchange(true)) hold->deleter(hold->data, hold->length, hold->deleter_data);
}

void Unref(StoreHold* hold) noexcept {
  if (hold->refs.fetch_sub(1) == 1) delete hold;
}

// Runs once the backing store is gone, on any thread, without an environment.
void FinalizeStore(void*, void* hint) noexcept {
  auto* hold = static_cast<StoreHold*>(hint);
  Fire(hold);
  Unref(hold);
}

}  // namespace

bool Available() noexcept { return HaveApi(); }

const char* const kProvider = "node-api";

napi_value NewSharedArrayBuffer(napi_env env, void* data, size_t length, Deleter deleter, void* deleter_data,
                                bool* store_made) noexcept {
  *store_made = false;
  if (!HaveApi() || data == nullptr || length == 0) return nullptr;
  auto* hold = new (std::nothrow) StoreHold{deleter, deleter_data, data, length};
  if (hold == nullptr) return nullptr;
  *store_made = true;  // from here on the deleter runs exactly once: by the finalizer, or below
  napi_value result = nullptr;
  const napi_status status = node_api_create_external_sharedarraybuffer(env, data, length, FinalizeStore, hold, &result);
  if (status != napi_ok || result == nullptr) {
    Fire(hold);  // a no-op if the finalizer has run already; it can no longer run the deleter after this
    Unref(hold);
    // The finalizer's reference: it is dropped by the finalizer should the call have made a backing store after
    // all, and leaks (a few bytes, never the mapping) otherwise.
    return nullptr;
  }
  Unref(hold);
  return result;
}

BufferInfo InspectBuffer(napi_env env, napi_value value) noexcept {
  BufferInfo info;
  if (value == nullptr || !HaveApi()) return info;
  bool is = false;
  if (node_api_is_sharedarraybuffer(env, value, &is) == napi_ok && is) {
    info.kind = BufferKind::kSharedArrayBuffer;
    void* data = nullptr;
    size_t length = 0;
    if (napi_get_arraybuffer_info(env, value, &data, &length) == napi_ok) {
      info.data = data;
      info.length = length;
    }
    return info;
  }
  bool is_arraybuffer = false;
  if (napi_is_arraybuffer(env, value, &is_arraybuffer) == napi_ok && is_arraybuffer) {
    info.kind = BufferKind::kArrayBuffer;
  }
  return info;
}

}  // namespace pymalloc::shared
