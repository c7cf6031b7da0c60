/**
 * The API surface a user sees: the published `.d.ts` (compiled from dist/ by a consumer project with `tsc`, under
 * `moduleResolution: node16` and the legacy `node`), the subpath exports (`pymalloc/codegen`,
 * `pymalloc/testing`), `using` and `util.inspect` of a heap.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { Heap } from '../../lib';
import { __testing } from '../../lib/testing';

const ROOT = path.resolve(__dirname, '../..');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

let dir: string;

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist/lib/index.d.ts'))) {
    throw new Error('dist/ is not built: run `npm run build:ts` (npm test does it first)');
  }
  // A consumer project: node_modules/pymalloc is this repository, as `npm install` of the package would link it.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-consumer-'));
  fs.mkdirSync(path.join(dir, 'node_modules/@types'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules/pymalloc'), 'dir');
  fs.symlinkSync(
    path.join(ROOT, 'node_modules/@types/node'),
    path.join(dir, 'node_modules/@types/node'),
    'dir',
  );
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Compiles `files` in the consumer project with `compilerOptions`; returns tsc's exit status and output. */
function compile(
  files: Record<string, string>,
  compilerOptions: object,
): { status: number | null; out: string } {
  const sub = fs.mkdtempSync(path.join(dir, 'p-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(sub, name), text);
  const tsconfig = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      skipLibCheck: false, // the published declarations must be correct themselves
      types: ['node'],
      typeRoots: [path.join(dir, 'node_modules/@types')],
      lib: ['ES2022', 'esnext.disposable'],
      target: 'ES2022',
      ...compilerOptions,
    },
    files: Object.keys(files),
  };
  fs.writeFileSync(path.join(sub, 'tsconfig.json'), JSON.stringify(tsconfig));
  const r = spawnSync(process.execPath, [TSC, '-p', sub], { encoding: 'utf8', cwd: sub });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const CONSUMER = `
import * as pm from 'pymalloc';
import { Heap, type HeapOptions } from 'pymalloc';
import { struct, t } from 'pymalloc/codegen';
import { __testing } from 'pymalloc/testing';

const options: HeapOptions = { policy: 'purge', reserve: 2 ** 26 };
const h = new Heap(options);
const p: number = h.malloc(24);
h.f64[p >>> 3] = Math.PI;
h.u32[(p + 8) >>> 2] = 42;
const address: bigint = h.addressOf(p);
h.free(p);
h.check();
const inUse: number = h.stats().bytesInUse;
// @ts-expect-error an internal constant of the fast paths is not in the published types
h.threshold = 0;
// @ts-expect-error the views are read-only
h.u32 = new Uint32Array(4);
// @ts-expect-error an internal helper
h.storePtr(0, 1);
// @ts-expect-error the reservation is internal
h.reservation.release();
// @ts-expect-error a slow path is internal
h.locate(16, 'free');
// @ts-expect-error the test hooks are under pymalloc/testing only
pm.__testing.setFault('commit', 1);
{
  using scoped = new Heap({ reserve: 2 ** 26 });
  scoped.malloc(16);
}
__testing.setFault('commit', 0);
struct('point', { x: t.int32, y: t.int32 });
// @ts-expect-error struct's arguments are typed, not any
struct(42);
h.destroy();
export { address, inUse };
`;

test('a consumer compiles against the published .d.ts, and internals do not type-check (moduleResolution node16)', () => {
  const r = compile({ 'consumer.ts': CONSUMER }, { module: 'node16', moduleResolution: 'node16' });
  expect(r.out).toBe('');
  expect(r.status).toBe(0);
});

test('legacy moduleResolution "node" finds pymalloc/codegen and pymalloc/testing (typesVersions)', () => {
  const r = compile(
    { 'consumer.ts': CONSUMER },
    { module: 'commonjs', moduleResolution: 'node', ignoreDeprecations: '6.0' },
  );
  expect(r.out).toBe('');
  expect(r.status).toBe(0);
});

test('the consumer check can fail: a wrong type is reported against the published types', () => {
  const r = compile(
    {
      'bad.ts': "import { Heap } from 'pymalloc';\nconst s: string = new Heap().malloc(1);\nexport { s };\n",
    },
    { module: 'node16', moduleResolution: 'node16' },
  );
  expect(r.status).not.toBe(0);
  expect(r.out).toMatch(/bad\.ts\(2,7\): error TS2322: Type 'number' is not assignable to type 'string'/);
});

test('require: the test hooks are under pymalloc/testing, not in the main entry', () => {
  const script = `
    const main = require('pymalloc');
    const testing = require('pymalloc/testing');
    const codegen = require('pymalloc/codegen');
    console.log(JSON.stringify({
      mainHasTesting: '__testing' in main,
      testing: typeof testing.__testing.setFault,
      heap: typeof main.Heap,
      struct: typeof codegen.struct,
    }));`;
  const out = execFileSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({
    mainHasTesting: false,
    testing: 'function',
    heap: 'function',
    struct: 'function',
  });
});

test('import: the ES module entries have the same split', () => {
  const script = `
    const main = await import('pymalloc');
    const testing = await import('pymalloc/testing');
    console.log(JSON.stringify({ mainHasTesting: '__testing' in main, testing: typeof testing.__testing }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dir,
    encoding: 'utf8',
  });
  expect(JSON.parse(out)).toEqual({ mainHasTesting: false, testing: 'object' });
});

test('heap[Symbol.dispose] destroys the heap, so `using` gives its memory back at the end of the block', () => {
  let kept: Heap;
  {
    using h = new Heap({ reserve: 2 ** 26 });
    h.malloc(64);
    kept = h;
    expect(kept.isDestroyed).toBe(false);
  }
  expect(kept.isDestroyed).toBe(true);
  expect(kept.u8.length).toBe(0);
  expect(() => kept.malloc(1)).toThrow(/malloc: the heap has been destroyed/);
  kept[Symbol.dispose](); // twice is harmless, as destroy() is
});

test('util.inspect(heap) is a one-line summary under the class name Heap, never the bytes', () => {
  const h = new Heap();
  try {
    expect(h.constructor.name).not.toBe('Heap'); // a specialised subclass: the summary still says Heap
    const p = h.malloc(100);
    h.malloc(5000);
    const text = inspect(h);
    expect(text).toMatch(/^Heap \{ .* \}$/);
    expect(text).toContain("preset: 'cpython-3.11'");
    expect(text).toContain("policy: 'purge'");
    expect(text).toContain(`bytesInUse: ${h.stats().bytesInUse}`);
    expect(text).toContain('blocksInUse: 2');
    expect(text).toContain('destroyed: false');
    expect(text.length).toBeLessThan(400);
    expect(text).not.toMatch(/Uint8Array|ArrayBuffer|Heap_cpython/);
    h.free(p);
    expect(inspect(h)).toContain('blocksInUse: 1');
  } finally {
    h.destroy();
  }
  const gone = inspect(h);
  expect(gone).toMatch(/^Heap \{/);
  expect(gone).toContain('destroyed: true');
  expect(gone).not.toContain('bytesInUse');
});

test('util.inspect does not throw on a corrupt heap; it says so', () => {
  const h = new Heap({ reserve: 2 ** 26 });
  try {
    const p = h.malloc(64);
    const poolHeader = (p & ~(h.geometry.poolSize - 1)) >>> 0;
    h.u32.fill(0xffffffff, poolHeader >>> 2, (poolHeader + 48) >>> 2); // the pool header overwritten
    expect(() => h.stats()).toThrow();
    expect(inspect(h)).toContain('corrupt: true');
  } finally {
    h.destroy();
  }
});

test('the test hooks still work from pymalloc/testing', () => {
  __testing.setFault('commit', 1);
  expect(__testing.pendingFault('commit')).toBe(1);
  __testing.setFault('commit', 0);
  expect(__testing.pendingFault('commit')).toBe(0);
});
