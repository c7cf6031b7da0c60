/*
 * The example addon: C walks a list that JavaScript built in a pymalloc heap, through real pointers, and writes
 * its results into the nodes for JavaScript to read. Compiled only against pymalloc.h (from
 * require('pymalloc').includeDir) and generated/list.h (from list.json by `pymalloc layout`).
 *
 *   walk(heap.buffer, head)    -> the number of nodes; sets each node's rank and prefix
 *   reverse(heap.buffer, head) -> the new head's offset; relinks the nodes through C pointers
 *   sum(heap.buffer, head)     -> the sum of the values (the benchmark's walk: reads only)
 *
 * A head of 0 is the empty list. A pointer that leaves the heap, or a list longer than the heap could hold
 * (a cycle), is a JavaScript exception, never a crash; so is a destroyed heap (size 0).
 */
#include <node_api.h>
#include <pymalloc.h>

#include "../generated/list.h"

#define CHECK(call)                                          \
  do {                                                       \
    if ((call) != napi_ok) return NULL; /* exception pending */ \
  } while (0)

/* Reads (buffer, head) into a view and the first node; NULL (with an exception thrown) on bad arguments. */
static napi_status args(napi_env env, napi_callback_info info, pymalloc_view *view, struct list_node **head) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t offset = 0;
  napi_status status = napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (status != napi_ok) return status;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (heap.buffer, head)");
    return napi_pending_exception;
  }
  if (pymalloc_view_from(env, argv[0], view) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the first argument must be a heap's buffer");
    return napi_pending_exception;
  }
  if (view->size == 0) {
    napi_throw_error(env, "ERR_PYMALLOC_DESTROYED", "the heap was destroyed");
    return napi_pending_exception;
  }
  if (napi_get_value_uint32(env, argv[1], &offset) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "head must be a pointer (a number)");
    return napi_pending_exception;
  }
  *head = (struct list_node *)pymalloc_ptr(view, offset, sizeof(struct list_node));
  if (offset != 0 && *head == NULL) {
    napi_throw_range_error(env, "ERR_PYMALLOC_INVALID_POINTER", "head is not a node inside the heap");
    return napi_pending_exception;
  }
  return napi_ok;
}

/* The node after n, checked: NULL at the end; throws (and sets *bad) when the pointer leaves the heap. */
static struct list_node *next_of(napi_env env, const pymalloc_view *view, const struct list_node *n, int *bad) {
  struct list_node *next;
  if (n->next == NULL) return NULL;
  next = (struct list_node *)pymalloc_in(view, n->next, sizeof(struct list_node));
  if (next == NULL) {
    napi_throw_range_error(env, "ERR_PYMALLOC_INVALID_POINTER", "a next pointer leaves the heap");
    *bad = 1;
  }
  return next;
}

static napi_value too_long(napi_env env) {
  napi_throw_range_error(env, "ERR_PYMALLOC_CORRUPT", "the list is longer than the heap can hold (a cycle?)");
  return NULL;
}

static napi_value Walk(napi_env env, napi_callback_info info) {
  pymalloc_view view;
  struct list_node *n;
  uint32_t rank = 0;
  double prefix = 0;
  int bad = 0;
  napi_value result;
  CHECK(args(env, info, &view, &n));
  for (; n != NULL; n = next_of(env, &view, n, &bad)) {
    if (rank == view.size / sizeof(struct list_node)) return too_long(env);
    prefix += n->value;
    n->rank = rank++;
    n->prefix = prefix;
  }
  if (bad) return NULL;
  CHECK(napi_create_uint32(env, rank, &result));
  return result;
}

static napi_value Sum(napi_env env, napi_callback_info info) {
  pymalloc_view view;
  struct list_node *n;
  size_t count = 0;
  double sum = 0;
  int bad = 0;
  napi_value result;
  CHECK(args(env, info, &view, &n));
  for (; n != NULL; n = next_of(env, &view, n, &bad)) {
    if (count++ == view.size / sizeof(struct list_node)) return too_long(env);
    sum += n->value;
  }
  if (bad) return NULL;
  CHECK(napi_create_double(env, sum, &result));
  return result;
}

static napi_value Reverse(napi_env env, napi_callback_info info) {
  pymalloc_view view;
  struct list_node *n, *prev = NULL, *next;
  size_t count = 0;
  int bad = 0;
  napi_value result;
  CHECK(args(env, info, &view, &n));
  /* Check the whole list first, so that a bad pointer leaves it as it was. */
  for (struct list_node *m = n; m != NULL; m = next_of(env, &view, m, &bad)) {
    if (count++ == view.size / sizeof(struct list_node)) return too_long(env);
  }
  if (bad) return NULL;
  while (n != NULL) {
    next = n->next;
    n->next = prev; /* a real address into the heap, as the TypeScript setters write */
    prev = n;
    n = next;
  }
  CHECK(napi_create_uint32(env, pymalloc_offset(&view, prev), &result));
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"walk", NULL, Walk, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sum", NULL, Sum, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reverse", NULL, Reverse, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
