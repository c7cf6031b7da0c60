/**
 * Host layouts cross-checked against ref-struct-di (which computes its own, for the host ABI only).
 * They agree on everything but `packed`, where ref-struct-di keeps the smallest member alignment instead
 * of 1 (and rounds the size up to it): that difference is asserted, not copied.
 */
import fc from 'fast-check';
import {
  array,
  computeLayout,
  field,
  flexibleArray,
  getTarget,
  hostTargetName,
  LayoutError,
  ptr,
  type RecordType,
  SCALAR_NAMES,
  struct,
  type Type,
  t,
  toRefType,
  union,
} from '../../codegen';
import { arena_object, pool_header } from '../../lib/layouts';

/** ref-struct-di has no long double, __int128 or wchar_t (toRefType says so: tested below). */
const NOT_IN_REF = ['longdouble', 'int128', 'uint128', 'wchar'];
const REF_SCALARS = SCALAR_NAMES.filter((n) => !NOT_IN_REF.includes(n));

const host = getTarget(hostTargetName());
const layoutOf = (r: RecordType) => computeLayout([r], host).records.get(r)!;

let names = 0;
const typeArb: fc.Arbitrary<Type> = fc.letrec<{ type: Type }>((tie) => ({
  type: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'ref' },
    { weight: 6, arbitrary: fc.constantFrom(...REF_SCALARS).map((n) => t[n]) },
    { weight: 1, arbitrary: fc.constant(ptr(t.void)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(tie('type'), fc.integer({ min: 1, max: 4 }))
        .map(([el, n]) => (el.kind === 'array' ? el : array(el, n))),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.boolean(), fc.array(tie('type'), { minLength: 1, maxLength: 5 }))
        .map(([u, fields]) => {
          const f = Object.fromEntries(fields.map((ty, i) => [`f${i}`, ty]));
          return (u ? union : struct)(`r${names++}`, f);
        }),
    },
  ),
})).type;

const recordArb = fc
  .tuple(fc.boolean(), fc.array(typeArb, { minLength: 1, maxLength: 8 }))
  .map(([u, fields]) =>
    (u ? union : struct)(`top${names++}`, Object.fromEntries(fields.map((ty, i) => [`m${i}`, ty]))),
  );

describe(`ref-struct-di agrees with the ${host.name} layout`, () => {
  it('on arena_object (pool_header has a member named ref, which ref-struct-di reserves)', () => {
    expect(() => toRefType(pool_header)).toThrow(
      /^pool_header\.ref: ref-struct-di cannot have a member named 'ref'/,
    );
    for (const r of [arena_object]) {
      const ref = toRefType(r);
      const rl = layoutOf(r);
      expect([ref.size, ref.alignment]).toEqual([rl.size, rl.align]);
      expect(Object.entries(ref.fields!).map(([k, f]) => [k, f.offset])).toEqual(
        rl.members.map((m) => [m.name, m.offset]),
      );
    }
  });

  it('on 500 random descriptions (scalars, pointers, arrays, nested structs and unions)', () => {
    fc.assert(
      fc.property(recordArb, (rec) => {
        const ref = toRefType(rec);
        const rl = layoutOf(rec);
        expect([ref.size, ref.alignment]).toEqual([rl.size, rl.align]);
        if (rec.kind === 'struct') {
          expect(Object.values(ref.fields!).map((f) => f.offset)).toEqual(rl.members.map((m) => m.offset));
        }
      }),
      { numRuns: 500, seed: 4242 },
    );
  });

  it('packed: same offsets, but ref-struct-di keeps the smallest member alignment (C: 1)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...REF_SCALARS), { minLength: 1, maxLength: 8 }), (scalars) => {
        const rec = struct(`p${names++}`, Object.fromEntries(scalars.map((n, i) => [`m${i}`, t[n]])), {
          packed: true,
        });
        const ref = toRefType(rec);
        const rl = layoutOf(rec);
        expect(Object.values(ref.fields!).map((f) => f.offset)).toEqual(rl.members.map((m) => m.offset));
        const minAlign = Math.min(...scalars.map((n) => host.scalars[n][1]));
        expect(rl.align).toBe(1);
        expect(rl.size).toBe(scalars.reduce((a, n) => a + host.scalars[n][0], 0));
        expect(ref.alignment).toBe(minAlign);
        expect(ref.size).toBe(Math.ceil(rl.size / minAlign) * minAlign);
      }),
      { numRuns: 300, seed: 4243 },
    );
  });

  it('rejects what ref-struct-di cannot express, with the path', () => {
    expect(() => toRefType(struct('s', { a: field(t.uint32, { align: 16 }) }))).toThrow(LayoutError);
    expect(() => toRefType(struct('s', { a: t.int }, { align: 16 }))).toThrow(
      /^s: ref-struct-di cannot express/,
    );
    expect(() => toRefType(struct('s', { a: union({ b: t.int }, { packed: true }) }))).toThrow(
      /^s\.a: ref-union-di/,
    );
    expect(() => toRefType(struct('s', { a: t.uint128 }))).toThrow(
      /^s\.a: ref-struct-di has no uint128 type$/,
    );
    expect(() => toRefType(struct('s', { a: field(t.uint32, { bits: 3 }) }))).toThrow(
      /^s\.a: ref-struct-di cannot express a bitfield$/,
    );
    expect(() => toRefType(struct('s', { n: t.int, a: flexibleArray(t.uint8) }))).toThrow(
      /^s\.a: ref-struct-di cannot express a flexible array member$/,
    );
  });
});
