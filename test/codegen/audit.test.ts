/**
 * What the independent audit of the layout compiler found (issue 20, item 6), one test per finding: each
 * failed before its fix. Headers that must compile are compiled with gcc for the host.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  array,
  computeLayout,
  emitC,
  emitTs,
  enumOf,
  getTarget,
  hostTargetName,
  LayoutError,
  loadDescription,
  type NamedType,
  parseJsonDescription,
  ptr,
  type RecordType,
  struct,
  t,
  typedef,
  union,
} from '../../codegen';
import { runCli } from '../cli/run-cli';
import { compileFor } from './compilers';
import { evalTs } from './ts-module';

const x64 = getTarget('x86_64-linux-gnu');
const i386 = getTarget('i386-linux-gnu');
const host = getTarget(hostTargetName());

function errorOf(fn: () => unknown): LayoutError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LayoutError) return err;
    throw err;
  }
  throw new Error('expected a LayoutError');
}

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'pymalloc-audit-'));
}

describe('an array typedef of an untagged record', () => {
  const decl = typedef('tarr', array(struct({ a: t.int32, b: t.uint8 }), 3));
  it('is refused with the typedef named (it emitted `typedef struct undefined tarr[3];`)', () => {
    const e = errorOf(() => computeLayout([decl], x64));
    expect(e.path).toBe('tarr');
    expect(e.message).toMatch(/untagged struct.*give it a tag/);
    const u = errorOf(() => computeLayout([typedef('uarr', array(union({ a: t.int32 }), 2, 2))], x64));
    expect(u.path).toBe('uarr');
  });
  it('the CLI exits 2 naming it (it exited 0)', async () => {
    const dir = scratch();
    const file = join(dir, 'tarr.json');
    writeFileSync(
      file,
      JSON.stringify({
        types: [
          {
            kind: 'typedef',
            name: 'tarr',
            type: { kind: 'array', of: { kind: 'struct', fields: [{ name: 'a', type: 'int' }] }, length: 3 },
          },
        ],
      }),
    );
    const r = await runCli(['layout', file, '--c', join(dir, 'tarr.h')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tarr: .*untagged/);
    expect(existsSync(join(dir, 'tarr.h'))).toBe(false);
  });
});

describe('names that would break the header or the TypeScript', () => {
  const MACROS = [
    'NULL',
    'SIZE_MAX',
    'INT8_MIN',
    'UINT64_MAX',
    'INTPTR_MAX',
    'PTRDIFF_MIN',
    'INT32_C',
    '__x86_64__',
    '_Pragma',
    '__func__',
    '_Reserved',
    'linux',
    'unix',
    'i386',
    'PYM_LAYOUT_PACKED',
  ];
  for (const name of MACROS) {
    it(`'${name}' as a field, a struct, a typedef and an enum member`, () => {
      const asField = errorOf(() => computeLayout([struct('s', { [name]: t.int32 })], x64));
      expect(asField.path).toBe(`s.${name}`);
      expect(asField.message).toContain(`'${name}'`);
      expect(errorOf(() => computeLayout([struct(name, { a: t.int32 })], x64)).path).toBe(name);
      expect(errorOf(() => computeLayout([typedef(name, t.int32)], x64)).path).toBe(name);
      expect(errorOf(() => computeLayout([enumOf('e', t.int32, { [name]: 1 })], x64)).path).toBe(`e.${name}`);
    });
  }
  it('a name equal to the include guard', () => {
    const layout = computeLayout([struct('POINT_H', { x: t.int32 }), struct('q', { POINT_H: t.int32 })], x64);
    const e = errorOf(() => emitC([layout], { source: 'point.ts', guard: 'POINT_H' }));
    expect(e.path).toBe('POINT_H');
    expect(e.message).toMatch(/include guard/);
  });
  it('names the checks still allow compile: lower-case, single underscore, _lower', () => {
    const decls = [struct('ok_1', { _padding: t.int32, x_MAX: t.int32, _a: t.uint8, Linux: t.uint8 })];
    const r = compileFor(emitC([computeLayout(decls, host)], { source: 'ok.ts' }), host, host);
    expect(r.output).toBe('');
  });
  const JS_RESERVED = [
    'function',
    'await',
    'yield',
    'let',
    'var',
    'typeof',
    'null',
    'eval',
    'arguments',
    'interface',
  ];
  for (const word of JS_RESERVED) {
    it(`enum member '${word}' is refused for TypeScript, naming the member`, () => {
      const layout = computeLayout([enumOf('e', t.int32, { [word]: 1 })], x64);
      const e = errorOf(() => emitTs(layout, { source: 'e.ts' }));
      expect(e.path).toBe(`e.${word}`);
      expect(e.message).toMatch(/JavaScript/);
    });
  }
  it('an enum member TypeScript accepts still compiles and evaluates', () => {
    const layout = computeLayout([enumOf('e', t.int32, { functions: 1, Await: 2 })], x64);
    expect(evalTs(emitTs(layout, { source: 'e.ts' }))).toMatchObject({ functions: 1, Await: 2 });
  });
});

describe('sizes are bounded per target', () => {
  it('a record larger than PTRDIFF_MAX on a 32-bit target fails with the path and the target', () => {
    const big = struct('big', { a: array(t.uint8, 2 ** 30), b: array(t.uint8, 2 ** 30) });
    const e = errorOf(() => computeLayout([big], i386));
    expect(e.path).toBe('big');
    expect(e.message).toContain('i386-linux-gnu');
    expect(computeLayout([big], x64).records.get(big)!.size).toBe(2 ** 31);
  });
  it('an array whose size is not exact in a JavaScript number fails (it printed 147573952589676410000)', () => {
    const huge = struct('huge', { a: array(t.uint64, 2 ** 31, 2 ** 31, 2 ** 2) });
    const e = errorOf(() => computeLayout([huge], x64));
    expect(e.path).toBe('huge.a');
    expect(e.message).toMatch(/too large/);
    expect(e.message).toContain('x86_64-linux-gnu');
  });
  it('accessors over a 32-bit heap offset refuse a record of 2^32 bytes or more', () => {
    const big = struct('big4g', { a: array(t.uint8, 2 ** 32), b: t.uint32 });
    const layout = computeLayout([big], x64);
    const e = errorOf(() => emitTs(layout, { source: 'big.ts' }));
    expect(e.path).toBe('big4g');
    expect(e.message).toMatch(/2\^32/);
  });
});

describe('deep nesting and long chains', () => {
  const nestedInline = (depth: number): RecordType => {
    let rec = struct({ leaf: t.uint8 });
    for (let i = 1; i < depth; i++) rec = struct({ [`n${i}`]: rec });
    return struct('deep', { top: rec });
  };
  const chain = (n: number): NamedType[] => {
    const out: RecordType[] = [struct('c0', { v: t.uint32 })];
    for (let i = 1; i < n; i++) out.push(struct(`c${i}`, { next: out[i - 1]!, v: t.uint8 }));
    return out;
  };
  it('2,000 levels of inline records: a LayoutError naming the limit, not a stack overflow', () => {
    const e = errorOf(() => computeLayout([nestedInline(2000)], x64));
    expect(e.path.startsWith('deep.top')).toBe(true);
    expect(e.message).toMatch(/nested more than 64 levels/);
  });
  it('the same through JSON', () => {
    // Built as text: JSON.stringify itself overflows the stack on 2,000 levels.
    let type = '"uint8"';
    for (let i = 0; i < 2000; i++) type = `{"kind":"struct","fields":[{"name":"n${i}","type":${type}}]}`;
    const text = `{"types":[{"kind":"struct","name":"deep","fields":[{"name":"top","type":${type}}]}]}`;
    const e = errorOf(() => computeLayout(parseJsonDescription(text, 'deep.json'), x64));
    expect(e.message).toMatch(/nested more than 64 levels/);
  });
  it('a chain of 384 named structs by value: a clear error (it was `Invalid string length`)', () => {
    const decls = chain(384);
    const e = errorOf(() => emitC([computeLayout(decls, x64)], { source: 'chain.ts' }));
    expect(e.message).toMatch(/nested more than 64 levels/);
  });
  it('64 levels are accepted and the header compiles', () => {
    const decls = [...chain(63), nestedInline(63)];
    const header = emitC([computeLayout(decls, host)], { source: 'chain.ts' });
    expect(compileFor(header, host, host).output).toBe('');
  });
  it('the header has a number of assertions linear in the chain length', () => {
    const asserts = (n: number) =>
      emitC([computeLayout(chain(n), x64)], { source: 'chain.ts' }).split('PYM_LAYOUT_STATIC_ASSERT(')
        .length - 1;
    const [a10, a20, a40] = [asserts(10), asserts(20), asserts(40)];
    expect(a20 - a10).toBe(a40 - a20 - (a20 - a10));
    expect(a40).toBeLessThan(8 * 40);
  });
});

describe('target-dependent errors name the target', () => {
  it('an enum value that fits long on x86_64 but not on i386', () => {
    const e = enumOf('big_enum', t.long, { BIG_ENUM_X: 2 ** 40 });
    expect(() => computeLayout([e], x64)).not.toThrow();
    const err = errorOf(() => computeLayout([e], i386));
    expect(err.path).toBe('big_enum.BIG_ENUM_X');
    expect(err.message).toContain('on i386-linux-gnu');
  });
});

describe('CLI and input edges', () => {
  it('`--c x --ts x` is refused (it wrote one over the other)', async () => {
    const dir = scratch();
    const file = join(dir, 'p.json');
    writeFileSync(
      file,
      JSON.stringify({ types: [{ kind: 'struct', name: 'p', fields: [{ name: 'x', type: 'int' }] }] }),
    );
    const out = join(dir, 'same');
    const r = await runCli(['layout', file, '--c', out, '--ts', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--c and --ts name the same file/);
    expect(existsSync(out)).toBe(false);
  });
  it('a UTF-8 byte order mark before JSON is accepted', async () => {
    const text = `\uFEFF${JSON.stringify({ types: [{ kind: 'struct', name: 'p', fields: [{ name: 'x', type: 'int' }] }] })}`;
    expect(parseJsonDescription(text, 'bom.json')).toHaveLength(1);
    const dir = scratch();
    writeFileSync(join(dir, 'bom.json'), text);
    expect(await loadDescription(join(dir, 'bom.json'))).toHaveLength(1);
  });
  it('a source path containing */ or a newline does not break the header or the TypeScript', () => {
    const decls = [struct('p', { x: t.int32, y: ptr(t.void) })];
    const source = 'odd*/dir\n#error no/p.ts';
    const header = emitC([computeLayout(decls, host)], { source, guard: 'P_H' });
    expect(compileFor(header, host, host).output).toBe('');
    const ts = emitTs(computeLayout(decls, x64), { source });
    expect(evalTs(ts)['SIZEOF_P']).toBe(16);
  });
});
