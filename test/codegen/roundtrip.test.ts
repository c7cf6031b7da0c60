/**
 * C and the generated TypeScript agree on the same bytes, both ways: a C program compiled with gcc against
 * the generated header writes structs that the accessors read, and reads back structs the accessors wrote.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  computeLayout,
  emitC,
  emitTs,
  flattenRecord,
  getTarget,
  hostTargetName,
  type Layout,
  type RecordType,
} from '../../codegen';
import { pool_header } from '../../lib/layouts';
import { compileFor, scratchDir } from './compilers';
import { FIXTURES } from './fixtures';
import { evalTs, makeViews } from './ts-module';

const host = getTarget(hostTargetName());
const BASE_HI = 0x7f12;
const RECORD_SPACING = 1024;
const FIRST = 4096;

type Kind = 'bool' | 'float' | 'int' | 'pointer';
interface Cell {
  rec: RecordType;
  index: number;
  cPath: string;
  fn: string;
  args: number[];
  offset: number;
  size: number;
  kind: Kind;
  signed: boolean;
  value: bigint | number | boolean;
}

function cellsOf(layout: Layout): Cell[] {
  const cells: Cell[] = [];
  [...layout.records.keys()].forEach((rec, index) => {
    const rl = layout.records.get(rec)!;
    const taken = new Uint8Array(rl.size);
    for (const f of flattenRecord(rl)) {
      const m = f.member;
      if (m.kind !== 'field' || m.record) continue;
      const el = m.element;
      const scalar = el.kind === 'enum' ? el.underlying : el.kind === 'scalar' ? el : undefined;
      const kind: Kind =
        el.kind === 'pointer'
          ? 'pointer'
          : scalar!.name === 'bool'
            ? 'bool'
            : /^float/.test(scalar!.name)
              ? 'float'
              : 'int';
      const size = el.kind === 'pointer' ? layout.target.pointerSize : layout.target.scalars[scalar!.name][0];
      const signed =
        kind === 'int' &&
        !/^(uint|uchar|ushort|ulong|ulonglong|size_t|uintptr_t)/.test(scalar!.name) &&
        !(scalar!.name === 'char' && !layout.target.charSigned);
      // Every combination of indices along the path.
      let combos: number[][] = [[]];
      for (const x of f.indices)
        combos = combos.flatMap((c) => Array.from({ length: x.length }, (_, i) => [...c, i]));
      for (const args of combos) {
        const offset = f.offset + args.reduce((a, i, n) => a + i * f.indices[n]!.stride, 0);
        // Union members overlap: keep the first one written at any byte.
        if (taken.subarray(offset, offset + size).some((b) => b !== 0)) continue;
        taken.fill(1, offset, offset + size);
        let k = 0;
        const cPath = f.path
          .map(
            (name, i) => `${name}${Array.from({ length: f.pathDims[i]! }, () => `[${args[k++]}]`).join('')}`,
          )
          .join('.');
        const n = cells.length + 1;
        let value: Cell['value'];
        if (kind === 'bool') value = n % 2 === 0;
        else if (kind === 'float') value = (n + 0.5) * (n % 2 ? -1 : 1) * (size === 8 ? 1024.125 : 1);
        else if (kind === 'pointer') value = 0x1000 + n * 8;
        else {
          const bits = BigInt(size * 8);
          const magnitude = (0x0123456789abcdefn * BigInt(n)) & ((1n << (bits - 1n)) - 1n);
          const v = signed && n % 2 ? -magnitude : magnitude;
          value = size === 8 ? v : Number(v);
        }
        cells.push({
          rec,
          index,
          cPath,
          fn: `${rec.name}_%_${f.path.join('_')}`,
          args,
          offset,
          size,
          kind,
          signed,
          value,
        });
      }
    }
  });
  return cells;
}

function cLiteral(c: Cell): string {
  if (c.kind === 'bool') return c.value ? 'true' : 'false';
  if (c.kind === 'float') return `${String(c.value)}`;
  if (c.kind === 'pointer') return `(((uint64_t)${BASE_HI} << 32) | ${String(c.value)}u)`;
  const v = BigInt(c.value as bigint | number);
  return c.signed ? (v < 0n ? `(-${-v}LL)` : `${v}LL`) : `${v}ULL`;
}

function cProgram(layout: Layout, cells: Cell[], headerFile: string): string {
  const recs = [...layout.records.keys()];
  const lines = [
    '#include <stdio.h>',
    '#include <string.h>',
    `#include "${headerFile}"`,
    'int main(int argc, char **argv) {',
    ...recs.map((r, i) => `  static ${r.kind} ${r.name} r${i};`),
    '  if (argc > 1 && strcmp(argv[1], "write") == 0) {',
    ...cells.map((c) =>
      c.kind === 'pointer'
        ? `    { uint64_t v = ${cLiteral(c)}; memcpy((void *)&r${c.index}.${c.cPath}, &v, 8); }`
        : `    r${c.index}.${c.cPath} = ${cLiteral(c)};`,
    ),
    ...recs.map((_, i) => `    fwrite(&r${i}, sizeof r${i}, 1, stdout);`),
    '    return 0;',
    '  }',
    '  FILE *f = fopen(argv[2], "rb");',
    ...recs.map((_, i) => `  if (fread(&r${i}, sizeof r${i}, 1, f) != 1) return 2;`),
    ...cells.map((c) => {
      const at = `r${c.index}.${c.cPath}`;
      if (c.kind === 'pointer')
        return `  { uint64_t v; memcpy(&v, (void *)&${at}, 8); printf("%llu\\n", (unsigned long long)v); }`;
      if (c.kind === 'float') return `  printf("%.17g\\n", (double)${at});`;
      if (c.kind === 'bool') return `  printf("%d\\n", (int)${at});`;
      return c.signed
        ? `  printf("%lld\\n", (long long)${at});`
        : `  printf("%llu\\n", (unsigned long long)${at});`;
    }),
    '  return 0;',
    '}',
    '',
  ];
  return lines.join('\n');
}

describe(`C (gcc) and the TypeScript accessors agree on ${host.name}`, () => {
  const decls = [...FIXTURES, pool_header];
  const layout = computeLayout(decls, host);
  const cells = cellsOf(layout);
  const dir = scratchDir();
  const header = join(dir, 'fixture_layout.h');
  writeFileSync(header, emitC([layout], { source: 'test/codegen/fixtures.ts' }));
  const accessors = evalTs(emitTs(layout, { source: 'test/codegen/fixtures.ts' })) as Record<
    string,
    (...a: unknown[]) => unknown
  >;
  const exe = join(dir, 'roundtrip');
  const src = join(dir, 'roundtrip.c');
  writeFileSync(src, cProgram(layout, cells, 'fixture_layout.h'));
  const recs = [...layout.records.values()];

  it('compiles the C side with the generated header', () => {
    expect(cells.length).toBeGreaterThan(60);
    expect(compileFor(`#include "${header}"\n`, host, host).ok).toBe(true);
    const r = spawnSync('gcc', ['-std=c11', '-Wall', '-Wno-address-of-packed-member', '-o', exe, src], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('TypeScript reads what C wrote', () => {
    const out = spawnSync(exe, ['write']);
    expect(out.status).toBe(0);
    const m = makeViews(FIRST + recs.length * RECORD_SPACING, BASE_HI);
    let at = 0;
    recs.forEach((rl, i) => {
      m.u8.set(out.stdout.subarray(at, at + rl.size), FIRST + i * RECORD_SPACING);
      at += rl.size;
    });
    expect(at).toBe(out.stdout.length);
    for (const c of cells) {
      const p = FIRST + c.index * RECORD_SPACING;
      const got = accessors[c.fn.replace('%', 'get')]!(m, p, ...c.args);
      expect({ field: c.cPath, got }).toEqual({ field: c.cPath, got: c.value });
      if (c.kind === 'pointer' && c.size === 8) expect(m.dv.getUint32(p + c.offset + 4, true)).toBe(BASE_HI);
    }
  });

  it('C reads what TypeScript wrote', () => {
    const m = makeViews(FIRST + recs.length * RECORD_SPACING, BASE_HI);
    for (const c of cells)
      accessors[c.fn.replace('%', 'set')]!(m, FIRST + c.index * RECORD_SPACING, ...c.args, c.value);
    const file = join(dir, 'from-ts.bin');
    writeFileSync(
      file,
      Buffer.concat(
        recs.map((rl, i) => m.u8.subarray(FIRST + i * RECORD_SPACING, FIRST + i * RECORD_SPACING + rl.size)),
      ),
    );
    const out = spawnSync(exe, ['read', file], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(cells.length);
    cells.forEach((c, i) => {
      const text = lines[i]!;
      let expected: string;
      if (c.kind === 'pointer') expected = String((BigInt(BASE_HI) << 32n) | BigInt(c.value as number));
      else if (c.kind === 'bool') expected = c.value ? '1' : '0';
      else if (c.kind === 'float') expected = String(c.value);
      else expected = String(c.value);
      const got = c.kind === 'float' ? String(Number(text)) : text;
      expect({ field: c.cPath, got }).toEqual({ field: c.cPath, got: expected });
    });
  });
});
