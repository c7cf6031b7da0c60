/**
 * Bit positions and the new constructs, checked against a compiler on the host:
 * - a C program (gcc, against the generated header) writes every bitfield of ~600 random records (packed,
 *   pack(N), unions, nested and arrays of inline records, bool, enum, signed, 64-bit) and the accessors read
 *   the same values; the accessors write them back into one buffer, neighbour after neighbour, and C reads
 *   the same values (so a setter that clobbered a neighbour fails);
 * - the acceptance description (bitfields, a flexible array, long double, a function pointer) gives a header
 *   gcc and clang accept on every target with all its asserts, and TypeScript constants equal to gcc's
 *   offsetof/sizeof on the host, SIZEOF_<S>_WITH(n) and sizeof_<s>_with(n) included.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  array,
  bits,
  computeLayout,
  constOf,
  emitC,
  emitTs,
  enumOf,
  flattenRecord,
  flexibleArray,
  fn,
  getTarget,
  hostTargetName,
  type Layout,
  type NamedType,
  ptr,
  type RecordType,
  type ScalarName,
  struct,
  TARGET_NAMES,
  t,
  union,
  unnamedBits,
} from '../../codegen';
import { compileFor, HAVE_CLANG, scratchDir } from './compilers';
import { evalTs, makeViews } from './ts-module';

const host = getTarget(hostTargetName());
const SPACING = 512;
const FIRST = 4096;

const BIT_TYPES: readonly ScalarName[] = [
  'uint8',
  'int8',
  'bool',
  'short',
  'uint16',
  'int',
  'uint',
  'long',
  'ulong',
  'int64',
  'uint64',
];
interface B {
  type: number;
  width: number;
  unnamed: boolean;
}
interface R {
  union: boolean;
  pack: 0 | 1 | 2 | 4;
  fields: (B | { plain: number } | { inner: R; dims: number })[];
}
const bitArb = fc.record({
  type: fc.nat({ max: BIT_TYPES.length - 1 }),
  width: fc.nat({ max: 64 }),
  unnamed: fc.boolean(),
});
const recArb = fc.letrec<{ rec: R; f: R['fields'][number] }>((tie) => ({
  f: fc.oneof(
    { maxDepth: 2, depthIdentifier: 'r' },
    { weight: 8, arbitrary: bitArb },
    { weight: 1, arbitrary: fc.record({ plain: fc.nat({ max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ inner: tie('rec'), dims: fc.constantFrom(0, 2) }) },
  ),
  rec: fc.record({
    union: fc.boolean(),
    pack: fc.constantFrom(0, 0, 1, 2, 4) as fc.Arbitrary<R['pack']>,
    fields: fc.array(tie('f'), { minLength: 1, maxLength: 7 }),
  }),
})).rec;

const en = enumOf('bf_en', t.uint8, { BF_A: 1, BF_B: 200 });

function build(n: number, spec: R, counter = { i: 0 }, named = true): RecordType {
  const fields: Record<string, unknown> = { [`n${counter.i++}`]: t.uint8 };
  for (const f of spec.fields) {
    const key = `f${counter.i++}`;
    if ('plain' in f) fields[key] = [t.uint16, t.int32, t.uint64, en][f.plain];
    else if ('inner' in f) {
      const inner = build(n, f.inner, counter, false);
      fields[key] = f.dims ? array(inner, f.dims) : inner;
    } else {
      const name = BIT_TYPES[f.type]!;
      const max = name === 'bool' ? 1 : host.scalars[name][0] * 8;
      const width = f.width % (max + 1);
      if (width === 0 || f.unnamed) fields[key] = unnamedBits(t[name], width);
      else fields[key] = bits(f.type === 0 && f.width % 3 === 0 ? en : t[name], width);
    }
  }
  const attrs = { packed: spec.pack === 1, ...(spec.pack > 1 ? { pack: spec.pack } : {}) };
  const make = spec.union ? union : struct;
  return named ? make(`bf${n}`, fields as never, attrs) : make(fields as never, attrs);
}

const SEED = Number(process.env['PYMALLOC_FC_SEED'] ?? 7);
const specs = fc.sample(recArb, { numRuns: 600, seed: SEED });

/** The description the issue's acceptance names. */
const acceptance = struct('acceptance', {
  kind: bits(t.uint, 3),
  flag: bits(t.bool, 1),
  level: bits(t.int, 5),
  _z: unnamedBits(t.int, 0),
  wide: bits(t.uint64, 41),
  ld: t.longdouble,
  on_event: ptr(fn(t.int, [ptr(t.void), constOf(t.int)])),
  name: ptr(constOf(t.char)),
  count: t.uint16,
  data: flexibleArray(t.uint32),
});
const records = [acceptance, ...specs.map((s, n) => build(n, s))];
const decls: NamedType[] = [en, ...records];
const layout = computeLayout(decls, host);

interface Cell {
  index: number;
  cPath: string;
  fn: string;
  args: number[];
  value: bigint | number | boolean;
  kind: 'bool' | 'number' | 'bigint';
  signed: boolean;
}

function cellsOf(l: Layout): Cell[] {
  const cells: Cell[] = [];
  let n = 0;
  [...l.records.keys()].forEach((rec, index) => {
    const rl = l.records.get(rec)!;
    const taken = new Uint8Array(rl.size * 8);
    for (const f of flattenRecord(rl)) {
      const bf = f.member.bitfield;
      if (!bf) continue;
      let combos: number[][] = [[]];
      for (const x of f.indices)
        combos = combos.flatMap((c) => Array.from({ length: x.length }, (_, i) => [...c, i]));
      for (const args of combos) {
        const start =
          f.container!.offset * 8 +
          bf.bitOffset +
          args.reduce((a, i, k) => a + i * f.indices[k]!.stride * 8, 0);
        if (taken.subarray(start, start + bf.width).some((b) => b !== 0)) continue; // union members overlap
        taken.fill(1, start, start + bf.width);
        n++;
        const isBool = f.member.element.kind === 'scalar' && f.member.element.name === 'bool';
        const w = BigInt(bf.width);
        // A value with the top and bottom bits set, varying per cell; negative for half the signed ones.
        let v = ((0x9e3779b97f4a7c15n * BigInt(n)) | 1n | (1n << (w - 1n))) & ((1n << w) - 1n);
        if (bf.signed && n % 2 === 0) v -= 1n << w;
        else if (bf.signed) v &= (1n << (w - 1n)) - 1n;
        let k = 0;
        const cPath = f.path
          .map(
            (name, i) => `${name}${Array.from({ length: f.pathDims[i]! }, () => `[${args[k++]}]`).join('')}`,
          )
          .join('.');
        const kind = isBool ? 'bool' : bf.width > 53 ? 'bigint' : 'number';
        cells.push({
          index,
          cPath,
          fn: `${rec.name}_%_${f.path.join('_')}`,
          args,
          value: isBool ? n % 2 === 0 : kind === 'bigint' ? v : Number(v),
          kind,
          signed: bf.signed && !isBool,
        });
      }
    }
  });
  return cells;
}

const cells = cellsOf(layout);
const recs = [...layout.records.values()];

function cProgram(headerFile: string): string {
  const lit = (c: Cell) =>
    c.kind === 'bool' ? (c.value ? '1' : '0') : c.signed ? `(${String(c.value)}LL)` : `${String(c.value)}ULL`;
  return [
    '#include <stdio.h>',
    '#include <string.h>',
    `#include "${headerFile}"`,
    'int main(int argc, char **argv) {',
    ...recs.map(
      (rl, i) =>
        `  static unsigned char b${i}[${rl.size} + 64]; ${rl.record.kind} ${rl.record.name} *r${i} = (void *)b${i};`,
    ),
    '  if (argc > 1 && strcmp(argv[1], "write") == 0) {',
    ...cells.map(
      (c) =>
        `    r${c.index}->${c.cPath} = ${c.signed && String(c.value).startsWith('-') ? `-${String(c.value).slice(1)}LL` : lit(c)};`,
    ),
    ...recs.map((rl, i) => `    fwrite(b${i}, ${rl.size}, 1, stdout);`),
    '    return 0;',
    '  }',
    '  FILE *f = fopen(argv[2], "rb");',
    ...recs.map((rl, i) => `  if (fread(b${i}, ${rl.size}, 1, f) != 1) return 2;`),
    ...cells.map((c) =>
      c.signed
        ? `  printf("%lld\\n", (long long)r${c.index}->${c.cPath});`
        : `  printf("%llu\\n", (unsigned long long)r${c.index}->${c.cPath});`,
    ),
    '  return 0;',
    '}',
    '',
  ].join('\n');
}

describe(`bitfields: C (gcc) and the accessors agree on ${host.name}`, () => {
  const dir = scratchDir();
  writeFileSync(join(dir, 'bf_layout.h'), emitC([layout], { source: 'bitfields test' }));
  const acc = evalTs(emitTs(layout, { source: 'bitfields test' })) as Record<
    string,
    (...a: unknown[]) => unknown
  >;
  const exe = join(dir, 'bf');
  writeFileSync(join(dir, 'bf.c'), cProgram('bf_layout.h'));

  it('compiles the C side against the generated header', () => {
    expect(cells.length).toBeGreaterThan(1000);
    expect(cells.some((c) => c.kind === 'bigint')).toBe(true);
    expect(cells.some((c) => c.signed)).toBe(true);
    expect(cells.some((c) => c.args.length > 0)).toBe(true);
    const r = spawnSync(
      'gcc',
      [
        '-std=c11',
        '-Wall',
        '-Wno-unused-variable',
        '-Wno-packed-bitfield-compat',
        '-o',
        exe,
        join(dir, 'bf.c'),
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the accessors read the bits C wrote', () => {
    const out = spawnSync(exe, ['write']);
    expect(out.status).toBe(0);
    const m = makeViews(FIRST + recs.length * SPACING, 0);
    let at = 0;
    recs.forEach((rl, i) => {
      m.u8.set(out.stdout.subarray(at, at + rl.size), FIRST + i * SPACING);
      at += rl.size;
    });
    const bad = cells.filter(
      (c) => acc[c.fn.replace('%', 'get')]!(m, FIRST + c.index * SPACING, ...c.args) !== c.value,
    );
    expect(bad.map((c) => c.cPath).slice(0, 5)).toEqual([]);
  });

  it('C reads the bits the accessors wrote, neighbours intact', () => {
    const m = makeViews(FIRST + recs.length * SPACING, 0);
    for (const c of cells) acc[c.fn.replace('%', 'set')]!(m, FIRST + c.index * SPACING, ...c.args, c.value);
    const file = join(dir, 'from-ts.bin');
    writeFileSync(
      file,
      Buffer.concat(recs.map((rl, i) => m.u8.subarray(FIRST + i * SPACING, FIRST + i * SPACING + rl.size))),
    );
    const out = spawnSync(exe, ['read', file], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(cells.length);
    const bad = cells.filter(
      (c, i) => lines[i] !== (c.kind === 'bool' ? (c.value ? '1' : '0') : String(c.value)),
    );
    expect(bad.map((c) => c.cPath).slice(0, 5)).toEqual([]);
  });
});

describe('the acceptance description (bitfields, flexible array, long double, function pointer)', () => {
  const layouts = TARGET_NAMES.map((n) => computeLayout([acceptance], getTarget(n)));
  const header = emitC(layouts, { source: 'acceptance' });

  for (const l of layouts) {
    const which = l.target.name === host.name ? 'gcc' : 'clang --target';
    it(`${l.target.name}: ${which} accepts the header with all its asserts (C11 and C++17)`, () => {
      if (l.target.name !== host.name && !HAVE_CLANG) {
        console.warn(`clang not found: ${l.target.name} SKIPPED`);
        expect(process.env['CI']).not.toBe('true');
        return;
      }
      for (const lang of ['c', 'c++'] as const) {
        const r = compileFor(header, l.target, host, lang);
        expect({ lang, output: r.output }).toEqual({ lang, output: '' });
        expect(r.ok).toBe(true);
      }
      expect(header).toContain(`"SIZEOF_ACCEPTANCE_WITH(3) on ${l.target.name}"`);
    });
  }

  it("TypeScript constants equal gcc's offsetof/sizeof on the host", () => {
    const hl = computeLayout([acceptance], host);
    const ts = evalTs(emitTs(hl, { source: 'acceptance' })) as Record<string, unknown>;
    const dir = scratchDir();
    writeFileSync(join(dir, 'acc.h'), header);
    const names = ['ld', 'on_event', 'name', 'count', 'data'];
    writeFileSync(
      join(dir, 'acc.c'),
      [
        '#include <stdio.h>',
        '#include "acc.h"',
        'int main(void) {',
        '  printf("%zu %zu\\n", sizeof(struct acceptance), _Alignof(struct acceptance));',
        ...names.map((n) => `  printf("%zu\\n", offsetof(struct acceptance, ${n}));`),
        '  for (int n = 0; n < 9; n++) printf("%zu\\n", (size_t)SIZEOF_ACCEPTANCE_WITH(n));',
        '  return 0;',
        '}',
      ].join('\n'),
    );
    const exe = join(dir, 'acc');
    const c = spawnSync('gcc', ['-std=c11', '-Wall', '-Werror', '-o', exe, join(dir, 'acc.c')], {
      encoding: 'utf8',
    });
    expect(c.stderr).toBe('');
    const out = spawnSync(exe, [], { encoding: 'utf8' }).stdout.trim().split(/\s+/).map(Number);
    const withFn = ts['sizeof_acceptance_with'] as (n: number) => number;
    expect(out).toEqual([
      ts['SIZEOF_ACCEPTANCE'],
      ts['ALIGNOF_ACCEPTANCE'],
      ...names.map((n) => ts[`OFFSETOF_ACCEPTANCE_${n.toUpperCase()}`]),
      ...Array.from({ length: 9 }, (_, n) => withFn(n)),
    ]);
    expect(ts['STRIDEOF_ACCEPTANCE_DATA']).toBe(4);
    expect(ts['BITWIDTHOF_ACCEPTANCE_WIDE']).toBe(41);
  });
});

describe(`__int128 and wchar_t: C (gcc) and the accessors agree on ${host.name}`, () => {
  const wide = struct('wide', {
    tag: t.uint8,
    a: t.int128,
    b: t.uint128,
    w: t.wchar,
    arr: array(t.int128, 2),
  });
  const packedWide = struct('packed_wide', { tag: t.uint8, a: t.int128, w: t.wchar }, { packed: true });
  const hasInt128 = !host.unsupported.includes('int128');
  const values: [string, bigint][] = [
    ['a', -(2n ** 100n) - 12345n],
    ['b', 2n ** 127n + 0xfedcba9876543210n],
    ['arr[0]', 2n ** 64n + 1n],
    ['arr[1]', -1n],
  ];
  const pvalues: [string, bigint][] = [['a', -(2n ** 126n) + 7n]];
  const cLit = (v: bigint) => {
    const u = BigInt.asUintN(128, v);
    return `(((unsigned __int128)0x${(u >> 64n).toString(16)}ULL << 64) | 0x${(u & (2n ** 64n - 1n)).toString(16)}ULL)`;
  };

  it('reads what C wrote and C reads what they wrote', () => {
    if (!hasInt128) {
      console.warn(`${host.name} has no __int128: SKIPPED`);
      return;
    }
    const l = computeLayout([wide, packedWide], host);
    const dir = scratchDir();
    writeFileSync(join(dir, 'w.h'), emitC([l], { source: 'wide' }));
    const acc = evalTs(emitTs(l, { source: 'wide' })) as Record<string, (...a: unknown[]) => unknown>;
    const print = (r: string, f: string) =>
      `  { unsigned __int128 u = (unsigned __int128)${r}.${f}; printf("%016llx%016llx\\n", (unsigned long long)(u >> 64), (unsigned long long)u); }`;
    writeFileSync(
      join(dir, 'w.c'),
      [
        '#include <stdio.h>',
        '#include <string.h>',
        '#include "w.h"',
        'int main(int argc, char **argv) {',
        '  static struct wide r; static struct packed_wide q;',
        '  if (argc > 1 && strcmp(argv[1], "write") == 0) {',
        ...values.map(([f, v]) => `    r.${f} = (__int128)${cLit(v)};`),
        ...pvalues.map(([f, v]) => `    q.${f} = (__int128)${cLit(v)};`),
        '    r.w = 0xBEEF; q.w = 0x1234;',
        '    fwrite(&r, sizeof r, 1, stdout); fwrite(&q, sizeof q, 1, stdout); return 0;',
        '  }',
        '  FILE *f = fopen(argv[2], "rb");',
        '  if (fread(&r, sizeof r, 1, f) != 1 || fread(&q, sizeof q, 1, f) != 1) return 2;',
        ...values.map(([f]) => print('r', f)),
        ...pvalues.map(([f]) => print('q', f)),
        '  printf("%lu %lu\\n", (unsigned long)r.w, (unsigned long)q.w);',
        '  return 0;',
        '}',
      ].join('\n'),
    );
    const exe = join(dir, 'w');
    const c = spawnSync(
      'gcc',
      ['-std=gnu11', '-Wall', '-Wno-packed-bitfield-compat', '-o', exe, join(dir, 'w.c')],
      {
        encoding: 'utf8',
      },
    );
    expect(c.stderr).toBe('');
    const [rw, qw] = [...l.records.values()];
    const out = spawnSync(exe, ['write']);
    expect(out.status).toBe(0);
    const m = makeViews(4096, 0);
    m.u8.set(out.stdout.subarray(0, rw!.size), 1024);
    m.u8.set(out.stdout.subarray(rw!.size), 2048 + 1); // packed: at an odd address
    const get = (n: string, p: number, ...a: number[]) => acc[n]!(m, p, ...a);
    expect([
      get('wide_get_a', 1024),
      get('wide_get_b', 1024),
      get('wide_get_arr', 1024, 0),
      get('wide_get_arr', 1024, 1),
    ]).toEqual(values.map(([, v]) => v));
    expect(get('packed_wide_get_a', 2049)).toBe(pvalues[0]![1]);
    expect([get('wide_get_w', 1024), get('packed_wide_get_w', 2049)]).toEqual([0xbeef, 0x1234]);
    const m2 = makeViews(4096, 0);
    const set = (n: string, p: number, ...a: unknown[]) => acc[n]!(m2, p, ...a);
    set('wide_set_a', 1024, values[0]![1]);
    set('wide_set_b', 1024, values[1]![1]);
    set('wide_set_arr', 1024, 0, values[2]![1]);
    set('wide_set_arr', 1024, 1, values[3]![1]);
    set('wide_set_w', 1024, 0xbeef);
    set('packed_wide_set_a', 2049, pvalues[0]![1]);
    set('packed_wide_set_w', 2049, 0x1234);
    const file = join(dir, 'w.bin');
    writeFileSync(
      file,
      Buffer.concat([m2.u8.subarray(1024, 1024 + rw!.size), m2.u8.subarray(2049, 2049 + qw!.size)]),
    );
    const back = spawnSync(exe, ['read', file], { encoding: 'utf8' });
    expect(back.status).toBe(0);
    const hex = (v: bigint) => BigInt.asUintN(128, v).toString(16).padStart(32, '0');
    expect(back.stdout.trim().split('\n')).toEqual(
      [...values, ...pvalues].map(([, v]) => hex(v)).concat(['48879 4660']),
    );
  });
});
