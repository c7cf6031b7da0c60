/* A header for `pymalloc layout --from-c`: nested and anonymous records, unions, arrays, pointers, enums,
   typedefs, bitfields, a flexible array, function pointers, qualifiers, long double, wchar_t, packing and
   alignment, as real headers have them. */
#ifndef IMPORT_H
#define IMPORT_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

enum color { RED, GREEN = 5, BLUE };
typedef enum { SHAPE_NONE = -1, SHAPE_CIRCLE, SHAPE_SQUARE } shape_kind;

struct vec2 { float x, y; };
typedef struct vec2 vec2_t;
typedef struct { int32_t id; double weight; } tagless;
typedef uint16_t port_t;
typedef port_t ports_t[4];

struct tree;  /* defined below */
struct opaque_handle;  /* never defined: behind a pointer only */

union value {
  int64_t i;
  double d;
  const char *s;
  struct vec2 v;
};

struct tree {
  struct tree *left, *right;
  struct opaque_handle *handle;
  union value val;
  enum color col;
  shape_kind kind;
  vec2_t points[3][2];
  struct { uint8_t tag; uint32_t len; } header;
  struct { short s; char c[3]; } small[2];
  union { uint32_t u; float f; };
  struct { uint8_t lo, hi; };
  ports_t ports;
  tagless t;
  size_t size;
  ptrdiff_t diff;
  uintptr_t bits;
  bool flag;
  unsigned long ul;
  long long ll;
  signed char sc;
  unsigned char uc;
  void *user;
  _Alignas(16) uint64_t aligned;
};

struct __attribute__((packed)) wire {
  uint8_t kind;
  uint32_t length;
  uint64_t stamp;
  struct vec2 where;
};

#pragma pack(push, 1)
struct pragma_packed { char c; int i; short s; };
#pragma pack(pop)

struct __attribute__((aligned(32))) cacheline { int32_t counter; };

struct flags {
  unsigned int ready : 1;
  unsigned int mode : 3;
  int delta : 5;
  unsigned int : 0;
  unsigned short tail : 7;
  unsigned char : 2;
  unsigned char last : 4;
  uint64_t wide : 40;
};

struct msg {
  uint32_t len;
  const char *name;
  volatile int32_t state;
  long double precise;
  wchar_t wc;
  int (*callback)(void *ctx, const char *fmt, ...);
  void (*on_done)(struct msg *, int (*)(int));
  struct flags flags;
  uint8_t data[];
};

#pragma pack(push, 2)
struct pack2 { char c; int i; double d; };
#pragma pack(pop)

#endif
