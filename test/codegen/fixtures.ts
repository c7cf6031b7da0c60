/** Small descriptions shared by the codegen tests: one of each construct. */
import {
  anonymous,
  array,
  enumOf,
  field,
  type NamedType,
  opaque,
  pad,
  ptr,
  struct,
  t,
  typedef,
  union,
} from '../../codegen';

export const byte = typedef('byte', t.uint8);
export const color = enumOf('color', t.uint16, { COLOR_RED: 1, COLOR_GREEN: 2, COLOR_BLUE: 300 });
const nodeRef = opaque('node');

/** Every scalar, natural alignment. */
export const scalars = struct('scalars', {
  a_int8: t.int8,
  a_uint8: t.uint8,
  a_int16: t.int16,
  a_uint16: t.uint16,
  a_int32: t.int32,
  a_uint32: t.uint32,
  a_int64: t.int64,
  a_uint64: t.uint64,
  a_float32: t.float32,
  a_float64: t.float64,
  a_bool: t.bool,
  a_char: t.char,
  a_schar: t.schar,
  a_uchar: t.uchar,
  a_short: t.short,
  a_ushort: t.ushort,
  a_int: t.int,
  a_uint: t.uint,
  a_long: t.long,
  a_ulong: t.ulong,
  a_longlong: t.longlong,
  a_ulonglong: t.ulonglong,
  a_size_t: t.size_t,
  a_ssize_t: t.ssize_t,
  a_intptr_t: t.intptr_t,
  a_uintptr_t: t.uintptr_t,
  a_ptrdiff_t: t.ptrdiff_t,
});

/** Misaligned members: DataView accessors. */
export const packed_rec = struct(
  'packed_rec',
  { tag: t.uint8, big: t.uint64, p: ptr(byte), d: t.float64, s: t.int16, flag: t.bool, c: color },
  { packed: true },
);

/** Arrays (multi-dimensional, of inline records), anonymous members, padding, attributes, pointers. */
export const node = struct(
  'node',
  {
    next: ptr(nodeRef),
    data: ptr(t.void),
    kind: color,
    grid: array(t.int16, 2, 3),
    items: array(struct({ key: t.uint32, weight: t.float32, raw: array(byte, 3) }), 2),
    u: anonymous(union({ as_u64: t.uint64, as_f64: t.float64, as_bytes: array(t.uint8, 8) })),
    _pad0: pad(3),
    wide: field(t.uint32, { align: 16 }),
    inner: packed_rec,
    tail: t.uint8,
  },
  { align: 32 },
);

export const FIXTURES: readonly NamedType[] = [byte, color, scalars, packed_rec, node];
