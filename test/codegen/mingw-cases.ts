/**
 * The hand-written mingw (x86_64-windows-gnu) bitfield records of test/codegen/mingw-bitfields.test.ts and
 * test/codegen/mingw-gcc.test.ts: those the model lays out (one ms_struct rule each, GCC and clang agreeing),
 * and those it refuses because GCC for mingw and clang lay them out differently.
 */
import {
  anonymous,
  bits,
  enumOf,
  flexibleArray,
  pad,
  type RecordType,
  struct,
  t,
  union,
  unnamedBits,
} from '../../codegen';

export type Model = 'msvc' | 'sysv';
export interface Case {
  rule: string;
  record: RecordType;
  /** The models that lay this record out differently from ms_struct. */
  differs: readonly Model[];
}

export const en = enumOf('mg_en', t.uint8, { MG_A: 1, MG_B: 2 });

/** Records mingw lays out (GCC and clang alike), one rule each. */
export const CASES: readonly Case[] = [
  {
    rule: 'a unit holds only bitfields of the same size (int, then short, then int: three units)',
    record: struct('mg_sizes', { c: t.uint8, a: bits(t.int, 3), b: bits(t.short, 3), d: bits(t.int, 3) }),
    differs: ['sysv'],
  },
  {
    rule: 'types of the same size share a unit (bool, an 8-bit enum, uint8), a full unit is closed',
    record: struct('mg_bytes', {
      a: bits(t.bool, 1),
      e: bits(en, 3),
      c: bits(t.uint8, 4),
      i: bits(t.int, 3),
      b: bits(t.char, 7),
    }),
    differs: ['sysv'],
  },
  {
    rule: 'packed: one-byte bitfields keep their units, which a zero-width one closes',
    record: struct(
      'mg_packed_bytes',
      {
        i: t.int,
        c: t.uint8,
        a: bits(t.uint8, 3),
        b: bits(t.bool, 1),
        e: bits(t.uint8, 6),
        z: unnamedBits(t.uint8, 0),
        f: bits(t.char, 2),
        d: t.uint16,
      },
      { packed: true },
    ),
    differs: ['sysv'],
  },
  {
    rule: 'packed: a zero-width bitfield after a non-bitfield is ignored, whatever its type',
    record: struct(
      'mg_packed_zero',
      { c: t.uint8, z: unnamedBits(t.int, 0), d: t.uint8, a: bits(t.uint8, 3) },
      { packed: true },
    ),
    differs: ['sysv'],
  },
  {
    rule: "packed does not reach a record declared inside (GCC's attribute): its units align to their type",
    record: struct(
      'mg_packed_outer',
      { c: t.uint8, i: anonymous(struct({ a: bits(t.int, 3), b: t.uint8 })), d: t.uint8 },
      { packed: true },
    ),
    differs: ['msvc', 'sysv'],
  },
  {
    rule: 'pack(N) caps where a unit starts and what it adds to the alignment',
    record: struct(
      'mg_pack2',
      { c: t.uint8, a: bits(t.int, 30), b: bits(t.int, 5), d: t.uint8, e: bits(t.int64, 60) },
      { pack: 2 },
    ),
    differs: ['sysv'],
  },
  {
    rule: 'pack(N), N the type size: a zero-width bitfield closes the unit at its type boundary',
    record: struct(
      'mg_pack4_zero',
      { c: t.uint8, a: bits(t.int, 3), z: unnamedBits(t.int, 0), d: t.uint8, e: bits(t.int64, 3) },
      { pack: 4 },
    ),
    differs: ['sysv'],
  },
  {
    rule: 'pack(2): a zero-width short after an int bitfield (its type is not wider than N)',
    record: struct(
      'mg_pack2_zero_short',
      { c: t.uint8, a: bits(t.int, 30), z: unnamedBits(t.short, 0), d: t.uint8 },
      { pack: 2 },
    ),
    differs: ['sysv'],
  },
  {
    rule: 'pack(1): a zero-width bitfield after a non-bitfield is ignored',
    record: struct(
      'mg_pack1_zero_ignored',
      { c: t.uint8, a: bits(t.int, 3), d: t.uint8, z: unnamedBits(t.int, 0), e: t.uint8 },
      { pack: 1 },
    ),
    differs: ['sysv'],
  },
  {
    rule: 'a zero-width bitfield after a non-bitfield is ignored',
    record: struct('mg_zero_ignored', { c: t.uint8, z: unnamedBits(t.int, 0), d: t.uint8 }),
    differs: ['sysv'],
  },
  {
    rule: 'a zero-width bitfield after a bitfield of another size aligns to its own type',
    record: struct('mg_zero_other', {
      c: t.uint8,
      a: bits(t.short, 3),
      z: unnamedBits(t.int, 0),
      d: t.uint8,
      e: bits(t.int, 4),
    }),
    differs: ['sysv'],
  },
  {
    rule: 'an unnamed bitfield raises the record alignment to its type',
    record: struct('mg_unnamed', { c: t.uint8, u: unnamedBits(t.int64, 5), d: t.uint8 }),
    differs: ['sysv'],
  },
  {
    rule: 'in a union a one-byte bitfield gives its unit, a zero-width one nothing',
    record: union('mg_union_bytes', { a: bits(t.uint8, 3), z: unnamedBits(t.int, 0), s: t.uint16 }),
    differs: ['msvc'],
  },
  {
    rule: 'a union in a struct ends the unit before it; an anonymous struct under pack(4) has its own units',
    record: struct(
      'mg_nested',
      {
        c: t.uint8,
        u: union({ a: bits(t.uint8, 3), b: t.uint8 }),
        i: anonymous(struct({ a2: bits(t.int, 3), z: unnamedBits(t.int, 0), b2: t.uint8 })),
        d: bits(t.int, 3),
        e: bits(t.int, 30),
      },
      { pack: 4 },
    ),
    differs: ['sysv'],
  },
  {
    rule: 'padding closes the unit; a flexible array follows the last one',
    record: struct('mg_pad_flex', {
      c: t.uint8,
      a: bits(t.int, 3),
      p: pad(3),
      b: bits(t.int, 3),
      f: flexibleArray(t.uint16),
    }),
    differs: ['sysv'],
  },
  {
    rule: '128-bit units (__int128, which MSVC does not have): a zero-width one under pack(16)',
    record: struct(
      'mg_int128',
      { c: t.uint8, a: bits(t.int128, 100), b: bits(t.uint128, 28), z: unnamedBits(t.int128, 0), d: t.uint8 },
      { pack: 16 },
    ),
    differs: ['sysv'],
  },
];

/**
 * Records in a shape GCC for mingw and clang lay out differently, which mingw refuses: the member named,
 * the start of the shape's message, and the members after the refused one whose offsets C can take.
 */
export interface Refused {
  record: RecordType;
  member: string;
  shape: string;
  after: readonly string[];
}

export const REFUSED: readonly Refused[] = [
  {
    record: struct('mgr_packed', { c: t.uint8, a: bits(t.int, 3), d: t.uint8 }, { packed: true }),
    member: 'mgr_packed.a',
    shape: 'a bitfield of a 4-byte type in a packed record',
    after: ['d'],
  },
  {
    record: struct(
      'mgr_packed_units',
      { c: t.uint8, a: bits(t.short, 3), b: bits(t.int64, 40), d: t.uint8 },
      { packed: true },
    ),
    member: 'mgr_packed_units.a',
    shape: 'a bitfield of a 2-byte type in a packed record',
    after: ['d'],
  },
  {
    record: struct(
      'mgr_packed_zero',
      { c: t.uint8, a: bits(t.uint8, 3), z: unnamedBits(t.int, 0), d: t.uint8 },
      { packed: true },
    ),
    member: 'mgr_packed_zero.z',
    shape: 'a bitfield of a 4-byte type in a packed record',
    after: ['d'],
  },
  {
    record: struct(
      'mgr_packed_on',
      { c: t.uint8, a: bits(t.short, 5), d: t.uint8 },
      { packedOn: ['x86_64-windows-gnu'] },
    ),
    member: 'mgr_packed_on.a',
    shape: 'a bitfield of a 2-byte type in a packed record',
    after: ['d'],
  },
  {
    record: union('mgr_packed_union', { c: t.uint8, a: bits(t.int, 3) }, { packed: true }),
    member: 'mgr_packed_union.a',
    shape: 'a bitfield of a 4-byte type in a packed record',
    after: [],
  },
  {
    record: union('mgr_union', { a: bits(t.int, 3), c: t.uint8 }),
    member: 'mgr_union.a',
    shape: 'a bitfield of a 4-byte type in a union',
    after: [],
  },
  {
    record: struct('mgr_union_inside', {
      c: t.uint8,
      u: union({ a: bits(t.short, 3), b: t.uint8 }),
      d: t.uint8,
    }),
    member: 'mgr_union_inside.u.a',
    shape: 'a bitfield of a 2-byte type in a union',
    after: ['u', 'd'],
  },
  {
    record: struct(
      'mgr_pack1_zero',
      { c: t.uint8, a: bits(t.int, 3), z: unnamedBits(t.int, 0), d: t.uint8 },
      { pack: 1 },
    ),
    member: 'mgr_pack1_zero.z',
    shape: 'a zero-width bitfield of a 4-byte type after a bitfield under pack(1)',
    after: ['d'],
  },
  {
    record: struct(
      'mgr_pack2_zero',
      { c: t.uint8, a: bits(t.short, 3), z: unnamedBits(t.int, 0), d: t.uint8 },
      { pack: 2 },
    ),
    member: 'mgr_pack2_zero.z',
    shape: 'a zero-width bitfield of a 4-byte type after a bitfield under pack(2)',
    after: ['d'],
  },
  {
    record: struct(
      'mgr_pack4_inherited',
      {
        c: t.uint8,
        i: anonymous(struct({ a: bits(t.int, 3), z: unnamedBits(t.int64, 0), b: t.uint8 })),
        d: t.uint8,
      },
      { pack: 4 },
    ),
    member: 'mgr_pack4_inherited.i.z',
    shape: 'a zero-width bitfield of an 8-byte type after a bitfield under pack(4)',
    after: ['b', 'd'],
  },
];
