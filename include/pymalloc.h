/*
 * pymalloc.h: the public C interface to a pymalloc heap, for your own Node-API addon.
 *
 * A pymalloc heap is one reservation of OS pages covered by one ArrayBuffer (`heap.buffer`). Pass that
 * buffer to your addon, turn it into a view here, and read and write the structs that JavaScript allocated
 * in it, following their pointer fields directly: a pointer field in the heap holds a real address (the
 * heap's convention, written by the TypeScript setters that `pymalloc layout` generates), and a pointer C
 * stores there must be a real address into the same heap, which the generated getters read back as the
 * block's offset.
 *
 * Found through `require('pymalloc').includeDir`. Header-only (static inline functions), C11 and C++11 or
 * later, and it depends on nothing but <node_api.h> (Node-API version 1). See docs/c-addon.md for the whole
 * contract; in short:
 *   - A view is valid until the heap is destroyed: make one per call into your addon, from the buffer the
 *     call was given, and do not keep it (or any pointer from it) past the call unless you also keep the
 *     heap alive and undestroyed. After `heap.destroy()` the buffer is detached: a new view has size 0 and
 *     every pymalloc_ptr of it is NULL.
 *   - A pointer is valid until JavaScript frees its block. Never free a block from C, never write outside
 *     the block you were given, and never touch the heap's own metadata (arenas, pool headers, free lists).
 *   - A heap belongs to the thread that made it: call into it from that thread, or from a worker thread
 *     (napi_async_work) only while JavaScript does not free or reallocate the blocks the worker touches.
 */
#ifndef PYMALLOC_H
#define PYMALLOC_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* The version of this interface; it grows only when functions are added. */
#define PYMALLOC_H_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

/* The bytes of one heap: [base, base + size). size is 0 (and base NULL) for a destroyed heap. */
typedef struct pymalloc_view {
  uint8_t *base;
  size_t size;
} pymalloc_view;

/*
 * Makes a view of a heap's buffer (`heap.buffer`, an ArrayBuffer, or a SharedArrayBuffer for a shared heap).
 * Returns napi_invalid_arg, with *out emptied, when `buffer` is neither or `out` is NULL; the status of the
 * failing Node-API call when one fails (an exception may then be pending); napi_ok otherwise. An empty or
 * detached buffer (a destroyed heap's `heap.buffer`) gives napi_ok and size 0.
 */
static inline napi_status pymalloc_view_from(napi_env env, napi_value buffer, pymalloc_view *out) {
  bool is_buffer = false;
  void *data = NULL;
  size_t length = 0;
  napi_status status;
  if (out == NULL) return napi_invalid_arg;
  out->base = NULL;
  out->size = 0;
  if (env == NULL || buffer == NULL) return napi_invalid_arg;
  status = napi_is_arraybuffer(env, buffer, &is_buffer);
  if (status != napi_ok) return status;
  if (is_buffer) {
    status = napi_get_arraybuffer_info(env, buffer, &data, &length);
    if (status != napi_ok) return status;
  } else {
    /* Node-API has no SharedArrayBuffer calls before Node 24: test it with instanceof and read it through a
       Uint8Array over it, both the realm's own constructors. */
    napi_value global, shared_ctor, u8_ctor, u8;
    napi_valuetype type;
    bool is_shared = false;
    napi_typedarray_type array_type;
    napi_value array_buffer;
    size_t byte_offset = 0;
    status = napi_typeof(env, buffer, &type);
    if (status != napi_ok) return status;
    if (type != napi_object) return napi_invalid_arg;
    status = napi_get_global(env, &global);
    if (status != napi_ok) return status;
    status = napi_get_named_property(env, global, "SharedArrayBuffer", &shared_ctor);
    if (status != napi_ok) return status;
    status = napi_typeof(env, shared_ctor, &type);
    if (status != napi_ok) return status;
    if (type != napi_function) return napi_invalid_arg; /* no SharedArrayBuffer in this realm */
    status = napi_instanceof(env, buffer, shared_ctor, &is_shared);
    if (status != napi_ok) return status;
    if (!is_shared) return napi_invalid_arg;
    status = napi_get_named_property(env, global, "Uint8Array", &u8_ctor);
    if (status != napi_ok) return status;
    status = napi_new_instance(env, u8_ctor, 1, &buffer, &u8);
    if (status != napi_ok) return status;
    status = napi_get_typedarray_info(env, u8, &array_type, &length, &data, &array_buffer, &byte_offset);
    if (status != napi_ok) return status;
    if (array_type != napi_uint8_array || byte_offset != 0) return napi_invalid_arg;
  }
  if (data == NULL || length == 0) return napi_ok; /* detached: the heap was destroyed */
  out->base = (uint8_t *)data;
  out->size = length;
  return napi_ok;
}

/*
 * The address of the heap's bytes [offset, offset + len), for a block offset that JavaScript passed (a
 * pointer returned by heap.malloc, or a field inside one). NULL when offset is 0 (JavaScript's NULL), when
 * the range does not lie wholly inside the heap, or when the heap is destroyed (size 0).
 */
static inline void *pymalloc_ptr(const pymalloc_view *v, uint32_t offset, size_t len) {
  if (v == NULL || v->base == NULL || offset == 0 || (size_t)offset >= v->size) return NULL;
  if (len > v->size - (size_t)offset) return NULL;
  return v->base + offset;
}

/*
 * p itself when [p, p + len) lies wholly inside the heap, else NULL: check a pointer read from a field before
 * following it (a pointer field is NULL, or a real address into the heap).
 */
static inline void *pymalloc_in(const pymalloc_view *v, const void *p, size_t len) {
  uintptr_t at = (uintptr_t)p, base;
  if (v == NULL || v->base == NULL || p == NULL) return NULL;
  base = (uintptr_t)v->base;
  if (at < base || at - base >= v->size || len > v->size - (at - base)) return NULL;
  return (void *)at;
}

/*
 * The heap offset of a pointer into the heap, for returning to JavaScript (which reads it as a pointer, and
 * which the generated accessors take); 0 when p is NULL or outside the heap, or the heap is destroyed.
 */
static inline uint32_t pymalloc_offset(const pymalloc_view *v, const void *p) {
  uintptr_t at = (uintptr_t)p, base;
  if (v == NULL || v->base == NULL || p == NULL) return 0;
  base = (uintptr_t)v->base;
  if (at < base || at - base >= v->size || at - base > UINT32_MAX) return 0;
  return (uint32_t)(at - base);
}

#ifdef __cplusplus
}
#endif

#endif /* PYMALLOC_H */
