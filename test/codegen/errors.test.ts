/** Bad descriptions: every kind of mistake is a LayoutError naming its path; the CLI prints one line. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  anonymous,
  array,
  computeLayout,
  emitTs,
  enumOf,
  field,
  fromJson,
  getTarget,
  LayoutError,
  loadDescription,
  type NamedType,
  opaque,
  pad,
  parseJsonDescription,
  ptr,
  struct,
  type Type,
  t,
  typedef,
  union,
} from '../../codegen';
import { arena_object, pool_header } from '../../lib/layouts';
import { runCli } from '../cli/run-cli';

const x64 = getTarget('x86_64-linux-gnu');

function errorOf(fn: () => unknown): LayoutError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LayoutError) return err;
    throw err;
  }
  throw new Error('expected a LayoutError');
}

const layoutError = (decls: NamedType[]) => errorOf(() => computeLayout(decls, x64));

describe('description errors name their path', () => {
  it('unknown type (a typo in plain JS gives undefined)', () => {
    const e = layoutError([
      struct('pool_header', { ref: union({ _padding: ptr(undefined as unknown as Type), count: t.uint }) }),
    ]);
    expect(e.path).toBe('pool_header.ref._padding');
    expect(e.message).toMatch(/^pool_header\.ref\._padding: unknown type/);
    expect(
      layoutError([struct('s', { a: { kind: 'scalar', name: 'uint256' } as unknown as Type })]).message,
    ).toBe("s.a: unknown type 'uint256'");
    expect(layoutError([struct('s', { a: t.void as unknown as Type })]).message).toMatch(
      /only valid behind a pointer/,
    );
  });
  it('duplicate field, also through anonymous members', () => {
    // A named member's own fields live in their own scope: not a duplicate.
    expect(() =>
      computeLayout([struct('s', { a: t.int, b: union({ a: t.int, a2: t.int }) })], x64),
    ).not.toThrow();
    const dup = fromJson({
      types: [
        {
          kind: 'struct',
          name: 's',
          fields: [
            { name: 'a', type: 'int' },
            { name: 'a', type: 'int' },
          ],
        },
      ],
    });
    expect(layoutError(dup).message).toBe("s.a: duplicate field 'a'");
    const e = layoutError([struct('s', { a: t.int, u: anonymous(union({ a: t.float32, b: t.int })) })]);
    expect(e.message).toBe("s.u.a: duplicate field 'a'");
  });
  it('empty struct or union', () => {
    expect(layoutError([struct('s', {})]).message).toBe('s: empty struct');
    expect(layoutError([struct('s', { u: union({}) })]).message).toBe('s.u: empty union');
  });
  it('C keyword or invalid identifier as a name', () => {
    expect(layoutError([struct('s', { int: t.int })]).message).toMatch(
      /^s\.int: field name 'int' is a C\/C\+\+ keyword/,
    );
    expect(layoutError([struct('s', { class: t.int })]).path).toBe('s.class');
    expect(layoutError([struct('s', { 'a-b': t.int })]).message).toMatch(
      /^s\.a-b: field name "a-b" is not a valid C identifier/,
    );
    expect(layoutError([struct('9s', { a: t.int })]).path).toBe('9s');
    expect(layoutError([typedef('struct', t.int)]).message).toMatch(/keyword/);
    expect(layoutError([enumOf('e', t.uint8, { 'not ok': 1 })]).path).toBe('e.not ok');
  });
  it('a struct containing itself by value (directly or through another)', () => {
    const selfRef = {
      kind: 'struct',
      name: 'loop',
      fields: [] as unknown[],
      packed: false,
      align: undefined,
    };
    selfRef.fields.push({ kind: 'field', name: 'me', type: selfRef, align: undefined });
    expect(layoutError([selfRef as unknown as NamedType]).message).toBe(
      "loop.me: 'loop' contains itself by value",
    );
    const json = fromJson({
      types: [
        { kind: 'struct', name: 'a', fields: [{ name: 'b', type: 'b' }] },
        { kind: 'struct', name: 'b', fields: [{ name: 'a', type: { kind: 'array', of: 'a', length: 2 } }] },
      ],
    });
    expect(layoutError(json).message).toMatch(/contains itself by value/);
    // Through a pointer it is fine.
    expect(() => computeLayout([pool_header, arena_object], x64)).not.toThrow();
  });
  it('array length not a positive integer', () => {
    expect(layoutError([struct('s', { a: array(t.int, 0) })]).message).toBe(
      's.a: array length 0 is not a positive integer',
    );
    expect(layoutError([struct('s', { a: array(t.int, 2, 1.5) })]).path).toBe('s.a');
    expect(layoutError([struct('s', { a: array(t.int, -1) })]).path).toBe('s.a');
  });
  it('alignment not a power of two (record or field), or below the natural alignment', () => {
    expect(layoutError([struct('s', { a: t.int }, { align: 12 })]).message).toMatch(
      /^s \(align\): alignment 12 is not a power of two/,
    );
    expect(layoutError([struct('s', { a: field(t.int, { align: 3 }) })]).path).toBe('s.a (align)');
    expect(layoutError([struct('s', { a: field(t.int64, { align: 4 }) })]).message).toMatch(
      /less than the natural alignment 8/,
    );
  });
  it('other misuse: opaque by value, untagged declaration, enum range, name clash, padding', () => {
    expect(layoutError([struct('s', { o: opaque('thing') })]).message).toMatch(
      /^s\.o: 'thing' is an incomplete type/,
    );
    expect(layoutError([struct({ a: t.int }) as unknown as NamedType]).message).toMatch(/needs a name/);
    expect(layoutError([enumOf('e', t.uint8, { E_BIG: 256 })]).message).toBe(
      'e.E_BIG: value 256 does not fit in uint8',
    );
    expect(layoutError([struct('x', { a: t.int }), typedef('x', t.int)]).message).toMatch(/declared twice/);
    expect(layoutError([struct('s', { a: t.int, p: pad(0) })]).path).toBe('s.p');
  });
  it('TypeScript name clashes (a_b against a.b) are reported', () => {
    const s = struct('s', { a: struct({ b: t.int }), a_b: t.int });
    const e = errorOf(() => emitTs(computeLayout([s], x64), { source: 'x' }));
    expect(e.message).toMatch(/^s\.a_b: TypeScript name OFFSETOF_S_A_B is also generated for s\.a\.b/);
  });
  it('unknown target', () => {
    expect(errorOf(() => getTarget('vax-bsd')).message).toMatch(/unknown target 'vax-bsd'/);
  });
});

describe('JSON descriptions', () => {
  it('load and lay out like the TypeScript ones', () => {
    const decls = loadDescription(join(__dirname, 'data', 'pool.json'));
    const layout = computeLayout(decls, x64);
    const fromTs = computeLayout([pool_header, arena_object], x64);
    for (const name of ['pool_header', 'arena_object']) {
      const a = [...layout.records].find(([r]) => r.name === name)![1];
      const b = [...fromTs.records].find(([r]) => r.name === name)![1];
      expect(a.members.map((m) => [m.name, m.offset, m.size])).toEqual(
        b.members.map((m) => [m.name, m.offset, m.size]),
      );
      expect([a.size, a.align]).toEqual([48, 8]);
    }
    const misc = [...layout.records].find(([r]) => r.name === 'misc')![1];
    expect(misc.members.map((m) => [m.name, m.offset])).toEqual([
      ['m', 0],
      ['grid', 1],
      ['anonymous2', 13],
      ['_pad', 21],
      ['opaque_ptr', 23],
      ['wide', 32],
    ]);
    expect([misc.size, misc.align]).toEqual([40, 8]);
  });
  const schemaError = (doc: unknown) => errorOf(() => fromJson(doc));
  it('fail the schema with a path', () => {
    expect(errorOf(() => parseJsonDescription('{ nope', 'x.json')).message).toMatch(
      /^x\.json: not valid JSON/,
    );
    expect(schemaError([]).message).toMatch(/^\$: expected a description/);
    expect(schemaError({ types: 3 }).path).toBe('$.types');
    expect(schemaError({ typos: [] }).message).toMatch(/unknown property 'typos'/);
    expect(schemaError({ types: [{ kind: 'class', name: 'x' }] }).path).toBe('$.types[0].kind');
    expect(schemaError({ types: [{ kind: 'struct', name: 's', pakced: true, fields: [] }] }).message).toMatch(
      /^s: unknown property 'pakced'/,
    );
    expect(
      schemaError({ types: [{ kind: 'struct', name: 's', fields: [{ name: 'a', type: 'nope' }] }] }).message,
    ).toBe("s.a.type: unknown type 'nope'");
    expect(
      schemaError({
        types: [
          {
            kind: 'struct',
            name: 's',
            fields: [{ name: 'a', type: { kind: 'array', of: 'int', length: 'x' } }],
          },
        ],
      }).path,
    ).toBe('s.a.type.length');
    expect(schemaError({ types: [{ kind: 'struct', name: 's', packed: 'yes', fields: [] }] }).path).toBe(
      's.packed',
    );
    expect(schemaError({ types: [{ kind: 'struct', name: 's', fields: [{ type: 'int' }] }] }).path).toBe(
      's.fields[0].name',
    );
  });
});

describe('CLI errors: one line, non-zero exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pymalloc-layout-cli-'));
  const run = (...args: string[]) => runCli(['layout', ...args]);

  it('a bad description: one line naming the path, exit 2', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        types: [
          {
            kind: 'struct',
            name: 's',
            fields: [{ name: 'a', type: { kind: 'array', of: 'int', length: 0 } }],
          },
        ],
      }),
    );
    const r = await run(file);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pymalloc: layout: s.a: array length 0 is not a positive integer\n');
  });
  it('a missing file and an unknown target: one line each', async () => {
    const r = await run(join(dir, 'missing.json'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const t2 = await run(join(__dirname, 'data', 'pool.json'), '--target', 'pdp11');
    expect(t2.code).toBe(2);
    expect(t2.stderr).toMatch(/^pymalloc: layout: unknown target 'pdp11'/);
  });
  it('--check names each stale file and exits 1; fresh files exit 0', async () => {
    const src = join(__dirname, 'data', 'pool.json');
    const h = join(dir, 'out.h');
    const ts = join(dir, 'out.ts');
    expect((await run(src, '--c', h, '--ts', ts)).code).toBe(0);
    expect((await run(src, '--c', h, '--ts', ts, '--check')).code).toBe(0);
    writeFileSync(h, 'stale');
    writeFileSync(ts, 'stale');
    const r = await run(src, '--c', h, '--ts', ts, '--check');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/out\.h is stale/);
    expect(r.stderr).toMatch(/out\.ts is stale/);
    expect((await run(src, '--check')).code).toBe(2);
  });
  it('prints the report to stdout without --c/--ts', async () => {
    const r = await run(join(__dirname, 'data', 'pool.json'), '--target', 'i386-linux-gnu');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\/\* target: i386-linux-gnu \*\//);
    expect(r.stdout).toMatch(/\/\* size: 32, cachelines: 1, members: 8 \*\//);
  });
  it('loads a .ts description by transpiling it', async () => {
    const r = await run(join(__dirname, '..', '..', 'lib', 'layouts.ts'), '--ts', '-');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/export const SIZEOF_POOL_HEADER = 48;/);
  });
});
