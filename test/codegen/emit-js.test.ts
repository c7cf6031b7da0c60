/**
 * `pymalloc layout --js`: the accessors as CommonJS and as an ES module, with a .d.ts. Every function must
 * behave exactly as the TypeScript accessors do (same results, same bytes written, same errors) on the
 * fixtures, the JSON loader's pool.json and the allocator's own lib/layouts.ts, for 64- and 32-bit targets;
 * the ES module loads in Node; the declarations type-check a consumer and reject a wrong call.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  computeLayout,
  declarationsOf,
  emitDts,
  emitJs,
  emitTs,
  getTarget,
  type NamedType,
  parseJsonDescription,
} from '../../codegen';
import { declarationFile, jsModuleKind } from '../../lib/cli/layout';
import { FIXTURES } from './fixtures';
import { evalTs, makeViews } from './ts-module';

const REPO = resolve(__dirname, '..', '..');
const DESCRIPTIONS: Record<string, readonly NamedType[]> = {
  fixtures: FIXTURES,
  pool: parseJsonDescription(readFileSync(join(__dirname, 'data', 'pool.json'), 'utf8'), 'pool.json'),
  // Through jest's own TypeScript transform (loadDescription imports a .ts file through module hooks, which
  // jest's sandbox does not run; test/codegen/load.test.ts covers that in a child process).
  layouts: declarationsOf(require('../../lib/layouts'), 'lib/layouts.ts'),
};
const TARGETS = ['x86_64-linux-gnu', 'i386-linux-gnu', 'wasm32'];

function evalCjs(js: string): Record<string, unknown> {
  const exports: Record<string, unknown> = {};
  new Function('exports', js)(exports);
  return exports;
}

type Fn = (...args: unknown[]) => unknown;

function outcome(f: () => unknown): unknown {
  try {
    return { value: f() };
  } catch (err) {
    return { error: String(err) };
  }
}

describe.each(Object.keys(DESCRIPTIONS))('%s', (name) => {
  test.each(TARGETS)('the CommonJS accessors behave as the TypeScript ones on %s', (targetName) => {
    const layout = computeLayout(DESCRIPTIONS[name], getTarget(targetName));
    const ts = evalTs(emitTs(layout, { source: 'x' }));
    const js = evalCjs(emitJs(layout, { source: 'x', module: 'cjs' }));
    expect(Object.keys(js).sort()).toEqual(Object.keys(ts).sort());
    let functions = 0;
    for (const [key, value] of Object.entries(ts)) {
      if (typeof value !== 'function') {
        expect([key, js[key]]).toEqual([key, value]);
        continue;
      }
      functions++;
      // The same random image in two buffers (with a high word that is sometimes baseHi), each accessor on
      // both: equal results, equal bytes after a setter, equal errors.
      const a = makeViews(4096, 0x7f12);
      const b = makeViews(4096, 0x7f12);
      for (let i = 0; i < 4096; i += 4) {
        const w = i % 16 === 12 ? 0x7f12 : (Math.random() * 2 ** 32) >>> 0;
        a.u32[i >>> 2] = w;
        b.u32[i >>> 2] = w;
      }
      const arity = (value as Fn).length;
      const isSet = /_set_/.test(key);
      const v = /_address$/.test(key) ? 0x7f1200001230n : /int64|uint64|_u?long/.test(key) ? 5n : 7;
      for (const p of [0, 64, 1024]) {
        const idx = Array.from({ length: arity - (isSet ? 3 : 2) }, () => 1);
        const args = isSet ? [p, ...idx, v] : [p, ...idx];
        const ra = outcome(() => (value as Fn)(a, ...args));
        const rb = outcome(() => (js[key] as Fn)(b, ...args));
        expect([key, p, rb]).toEqual([key, p, ra]);
        expect(Buffer.from(b.u8).equals(Buffer.from(a.u8))).toBe(true);
      }
    }
    expect(functions).toBeGreaterThan(0);
  });
});

test('pointer fields have a checked getter and whole-address accessors, on 64- and 32-bit targets', () => {
  const x64 = evalCjs(
    emitJs(computeLayout(DESCRIPTIONS.fixtures, getTarget('x86_64-linux-gnu')), {
      source: 'x',
      module: 'cjs',
    }),
  );
  const m = makeViews(256, 0x7f12);
  const set = x64.node_set_next as Fn;
  const get = x64.node_get_next as Fn;
  const checked = x64.node_get_next_checked as Fn;
  const address = x64.node_get_next_address as Fn;
  const setAddress = x64.node_set_next_address as Fn;
  set(m, 64, 0x120);
  expect([get(m, 64), checked(m, 64), address(m, 64)]).toEqual([0x120, 0x120, 0x7f1200000120n]);
  set(m, 64, 0);
  expect([checked(m, 64), address(m, 64)]).toEqual([0, 0n]);
  setAddress(m, 64, 0x5555_0000_0040n); // another mapping's address: the plain getter would truncate it
  expect(get(m, 64)).toBe(0x40);
  expect(() => checked(m, 64)).toThrow(
    new RangeError('node.next: 0x555500000040 is neither NULL nor an address in this heap'),
  );
  expect(address(m, 64)).toBe(0x5555_0000_0040n);
  setAddress(m, 64, 0x7f12_0000_0000n); // the heap's own byte 0 is not a block, and reads as NULL otherwise
  expect(() => checked(m, 64)).toThrow(RangeError);

  const i386 = evalCjs(
    emitJs(computeLayout(DESCRIPTIONS.fixtures, getTarget('i386-linux-gnu')), { source: 'x', module: 'cjs' }),
  );
  const n = makeViews(256, 0);
  (i386.node_set_next_address as Fn)(n, 64, 0xdead_beefn);
  expect([(i386.node_get_next as Fn)(n, 64), (i386.node_get_next_checked as Fn)(n, 64)]).toEqual([
    0xdeadbeef, 0xdeadbeef,
  ]);
  expect((i386.node_get_next_address as Fn)(n, 64)).toBe(0xdeadbeefn);
});

describe('files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pymalloc-js-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('the ES module loads in Node, and the CommonJS one through import too', () => {
    const layout = computeLayout(DESCRIPTIONS.fixtures, getTarget('x86_64-linux-gnu'));
    writeFileSync(join(dir, 'a.mjs'), emitJs(layout, { source: 'x', module: 'esm' }));
    writeFileSync(join(dir, 'b.cjs'), emitJs(layout, { source: 'x', module: 'cjs' }));
    const script = `
      import * as a from './a.mjs';
      import * as b from './b.cjs';
      const buf = new ArrayBuffer(256);
      const m = { u8: new Uint8Array(buf), u16: new Uint16Array(buf), u32: new Uint32Array(buf), i32: new Int32Array(buf), dv: new DataView(buf), baseHi: 9 };
      a.node_set_next(m, 0, 64);
      console.log(JSON.stringify([a.SIZEOF_NODE, b.SIZEOF_NODE, b.node_get_next(m, 0), String(a.node_get_next_address(m, 0))]));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    const sizeof = (evalTs(emitTs(layout, { source: 'x' })) as { SIZEOF_NODE: number }).SIZEOF_NODE;
    expect(JSON.parse(r.stdout)).toEqual([sizeof, sizeof, 64, String((9n << 32n) | 64n)]);
  });

  test('the declarations type-check a consumer and reject a wrong call', () => {
    const layout = computeLayout(DESCRIPTIONS.fixtures, getTarget('x86_64-linux-gnu'));
    writeFileSync(join(dir, 'acc.js'), emitJs(layout, { source: 'x', module: 'cjs' }));
    writeFileSync(join(dir, declarationFile('acc.js')), emitDts(layout, { source: 'x' }));
    writeFileSync(
      join(dir, 'consumer.ts'),
      [
        "import { type LayoutViews, SIZEOF_NODE, node_get_next, node_get_next_address, node_set_next } from './acc';",
        'declare const m: LayoutViews;',
        'const size: number = SIZEOF_NODE;',
        'node_set_next(m, 0, size);',
        'const next: number = node_get_next(m, 0);',
        'const whole: bigint = node_get_next_address(m, 0);',
        '// @ts-expect-error a pointer is a number',
        "node_set_next(m, 0, 'x');",
        'export { next, whole };',
      ].join('\n'),
    );
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'commonjs', 'consumer.ts'],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

test('the module kind follows --module, else the file name as Node loads it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pymalloc-kind-'));
  try {
    expect(jsModuleKind(join(dir, 'a.mjs'), undefined)).toBe('esm');
    expect(jsModuleKind(join(dir, 'a.cjs'), undefined)).toBe('cjs');
    expect(jsModuleKind(join(dir, 'a.mjs'), 'cjs')).toBe('cjs');
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    expect(jsModuleKind(join(dir, 'a.js'), undefined)).toBe('esm');
    writeFileSync(join(dir, 'package.json'), '{"type":"commonjs"}');
    expect(jsModuleKind(join(dir, 'a.js'), undefined)).toBe('cjs');
    expect(() => jsModuleKind('a.js', 'amd')).toThrow("layout: --module must be 'cjs' or 'esm', got 'amd'");
    expect([declarationFile('a.js'), declarationFile('a.mjs'), declarationFile('a.cjs')]).toEqual([
      'a.d.ts',
      'a.d.mts',
      'a.d.cts',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
