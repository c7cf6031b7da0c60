/**
 * codegen/load.ts and codegen/strip.ts: TypeScript descriptions (.ts, .mts, .cts) load with their types
 * stripped, whatever `typescript` is installed (none, or TypeScript 7's package, which has no compiler API);
 * a file that does not parse or throws is one line naming the file and line, exit 2. These run the built
 * CLI in a child process, in a directory outside the project with no node_modules of its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripperName, stripTypes } from '../../codegen/strip';
import { runBuiltCli } from './run-built-cli';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-load-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

function layout(file: string, nodeArgs: string[] = []) {
  return runBuiltCli(['layout', file], { cwd: dir, nodeArgs });
}

/** The struct names of a report, in the order printed. */
function structs(report: string): string[] {
  return [...report.matchAll(/^struct (\w+) \{/gm)].map((m) => m[1] ?? '');
}

/** Expects exit 2 and exactly one line on stderr; returns that line. */
function oneLineError(r: ReturnType<typeof layout>): string {
  expect(r.stdout).toBe('');
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.code).toBe(2);
  return r.stderr.trimEnd();
}

describe('TypeScript descriptions load with their types stripped', () => {
  test('.ts: type syntax, relative imports by .js twin and without extension, exports in source order', () => {
    write(
      'tag.ts',
      "import { t } from 'pymalloc/codegen';\nexport const tagType: typeof t.uint8 = t.uint8;\n",
    );
    write(
      'base.ts',
      "import { struct } from 'pymalloc/codegen';\nimport { tagType } from './tag';\n" +
        "interface Unused { a: string }\nexport const zbase = struct('zbase', { tag: tagType });\n",
    );
    write(
      'point.ts',
      "import { struct, t, type StructDecl } from 'pymalloc/codegen';\nimport { zbase } from './base.js';\n" +
        "export const point: StructDecl = struct('point', { x: t.int32 as typeof t.int32, b: zbase });\n" +
        "export const apex = struct('apex', { y: t.uint64 });\n",
    );
    const r = layout('point.ts');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The declaration order of the file (a module namespace would list apex first), zbase pulled in as used.
    expect(structs(r.stdout)).toEqual(['zbase', 'point', 'apex']);
  });

  test('.mts (an ES module) and .cts (CommonJS, requiring another .cts)', () => {
    write(
      'm.mts',
      "import { struct, t } from 'pymalloc/codegen';\nexport const m: unknown = struct('m', { a: t.int64 });\n",
    );
    const m = layout('m.mts');
    expect(m.stderr).toBe('');
    expect(structs(m.stdout)).toEqual(['m']);
    write(
      'inner.cts',
      "const { struct, t } = require('pymalloc/codegen');\nexports.inner = struct('inner', { q: t.int16 as any });\n",
    );
    write(
      'outer.cts',
      "const { struct } = require('pymalloc/codegen');\nconst { inner } = require('./inner.cts');\n" +
        "type Q = number;\nmodule.exports = { outer: struct('outer', { i: inner }) };\n",
    );
    const c = layout('outer.cts');
    expect(c.stderr).toBe('');
    expect(structs(c.stdout)).toEqual(['inner', 'outer']);
  });
});

describe('whatever typescript package is installed', () => {
  // A preload script decides what `require('typescript')` gives in the child: nothing at all, or the shape of
  // TypeScript 7's package (its main export is only a version; there is no JavaScript compiler API), which
  // made the old loader fail with "Cannot read properties of undefined (reading 'CommonJS')".
  const shapes: Array<[string, string]> = [
    [
      'none installed',
      "const e = new Error(\"Cannot find module 'typescript'\"); e.code = 'MODULE_NOT_FOUND'; throw e;",
    ],
    ['TypeScript 7 (no compiler API)', "return { version: '7.0.2' };"],
  ];
  test.each(shapes)('%s', (_name, body) => {
    write(
      'preload.cjs',
      "const Module = require('node:module');\nconst load = Module._load;\n" +
        `Module._load = function (request, ...rest) {\n  if (request === 'typescript') { ${body} }\n` +
        '  return load.call(this, request, ...rest);\n};\n',
    );
    write(
      'p.ts',
      "import { struct, t } from 'pymalloc/codegen';\nexport const p = struct('p', { x: t.int32 as typeof t.int32 });\n",
    );
    const r = layout('p.ts', ['--require', join(dir, 'preload.cjs')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(structs(r.stdout)).toEqual(['p']);
  });
});

describe('a file that does not parse or throws: one line naming the file and line, exit 2', () => {
  test('TypeScript syntax error', () => {
    write(
      'bad.ts',
      "import { struct, t } from 'pymalloc/codegen';\n\nexport const p = struct('p', { x: t.int32, y: });\n",
    );
    expect(oneLineError(layout('bad.ts'))).toMatch(/^pymalloc layout: bad\.ts:3: \S/);
  });
  test('syntax that cannot be stripped (an enum)', () => {
    write('enum.ts', 'const a = 1;\nenum E { A }\nexport const x = E.A;\n');
    expect(oneLineError(layout('enum.ts'))).toMatch(/^pymalloc layout: enum\.ts:2: .*enum/);
  });
  test('a JavaScript early error (a redeclaration)', () => {
    write('dup.ts', 'const a = 1;\nconst b: number = 2;\nconst a = 3;\nexport { b };\n');
    expect(oneLineError(layout('dup.ts'))).toBe(
      "pymalloc layout: dup.ts:3: SyntaxError: Identifier 'a' has already been declared",
    );
  });
  test('an exception while the file runs', () => {
    write(
      'throws.ts',
      "import { struct, t } from 'pymalloc/codegen';\nconst n: number = 3;\n\n" +
        "export const p = struct('p', { x: (t as any).nope.x });\n",
    );
    expect(oneLineError(layout('throws.ts'))).toBe(
      "pymalloc layout: throws.ts:4: TypeError: Cannot read properties of undefined (reading 'x')",
    );
  });
  test('an exception in a file it imports names that file', () => {
    write('thrower.ts', "const x: number = 1;\nthrow new RangeError('no such field');\n");
    write('importer.ts', "import './thrower';\nexport const q = 1;\n");
    expect(oneLineError(layout('importer.ts'))).toBe(
      'pymalloc layout: thrower.ts:2: RangeError: no such field',
    );
  });
  test('.cts: syntax error and exception', () => {
    write('badc.cts', 'const a = 1;\nconst x: = 1;\n');
    expect(oneLineError(layout('badc.cts'))).toMatch(/^pymalloc layout: badc\.cts:2: \S/);
    write('throwc.cts', "const a: number = 1;\nthrow new Error('boom');\n");
    expect(oneLineError(layout('throwc.cts'))).toBe('pymalloc layout: throwc.cts:2: boom');
  });
  test('an import that does not resolve', () => {
    write('miss.ts', "import { x } from './missing';\nexport const q = x;\n");
    expect(oneLineError(layout('miss.ts'))).toMatch(
      /^pymalloc layout: miss\.ts: Cannot find module .*missing/,
    );
  });
});

describe('stripTypes', () => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const nodeHasIt = major > 23 || (major === 23 && minor >= 2) || (major === 22 && minor >= 13);
  test(`uses ${nodeHasIt ? "Node's module.stripTypeScriptTypes" : 'amaro'} on Node ${process.versions.node}`, () => {
    // One Node runs one of the two paths; .ci/run runs this file under Node 20 (amaro) and Node 22 (Node's).
    console.log(`stripTypes: ${stripperName()} on Node ${process.versions.node}`);
    expect(stripperName()).toBe(nodeHasIt ? 'node' : 'amaro');
    expect(typeof (Module as unknown as { stripTypeScriptTypes?: unknown }).stripTypeScriptTypes).toBe(
      nodeHasIt ? 'function' : 'undefined',
    );
  });
  test('erases types in place: every token keeps its line and column', () => {
    const ts = 'const a: number = 1;\ninterface I {\n  x: string;\n}\nexport const b = a as unknown;\n';
    const js = stripTypes(ts, 'x.ts');
    expect(js.split('\n')).toHaveLength(ts.split('\n').length);
    expect(js.split('\n')[0]).toMatch(/^const a\s+= 1;$/);
    expect(js.split('\n')[4]?.indexOf('a')).toBe(ts.split('\n')[4]?.indexOf('a'));
    expect(js).not.toMatch(/number|interface|unknown/);
  });
  test('a syntax error is a failure with its line', () => {
    let failure: unknown;
    try {
      stripTypes('const a = 1;\n\nconst b: = 2;\n', 'x.ts');
    } catch (err) {
      failure = err;
    }
    expect(failure).toEqual(expect.objectContaining({ line: 3, message: expect.stringMatching(/\S/) }));
  });
});
