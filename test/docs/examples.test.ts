/**
 * Every runnable example of README.md and docs/*.md runs, so that the documentation cannot rot (the convention is
 * in ./blocks.ts). Each document gets a directory of its own, set up as a user's project that depends on
 * pymalloc: node_modules/pymalloc is this repository (its built dist/), and `pymalloc` (and `npx pymalloc`) is the
 * built CLI. js, ts and mjs blocks run in a child Node process there; ts blocks are also type-checked, all at once,
 * against the published .d.ts; sh blocks run in bash with `set -euo pipefail`; `c compile` blocks are compiled
 * with cc. A non-zero exit fails the block's test, with its output.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { embedMissing } from '../tools/embed-missing';
import { type Block, documents, missingOutput, parseBlocks, runs } from './blocks';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/lib/cli/main.js');
const TIMEOUT_MS = 180_000;

const DOCS = documents(ROOT).map((doc) => ({ doc, blocks: parseBlocks(ROOT, doc) }));

const NEEDS: Record<string, string | undefined> = { 'python3-dev': embedMissing() };

/** A directory laid out as a project that has installed pymalloc. */
function consumerProject(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pymalloc-docs-${name}-`));
  const bin = path.join(dir, 'node_modules/.bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules/@types'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules/pymalloc'), 'dir');
  fs.symlinkSync(
    path.join(ROOT, 'node_modules/@types/node'),
    path.join(dir, 'node_modules/@types/node'),
    'dir',
  );
  // What npm makes of package.json's "bin".
  fs.writeFileSync(path.join(bin, 'pymalloc'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, {
    mode: 0o755,
  });
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "docs-example", "private": true }\n');
  return dir;
}

function slug(doc: string): string {
  return doc.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');
}

interface Ran {
  status: number | null;
  output: string;
  stdout: string;
}

function run(command: string, args: string[], cwd: string): Ran {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(cwd, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}`,
  };
  delete env['PYMALLOC']; // the examples show the defaults
  const r = spawnSync(command, args, {
    cwd,
    env,
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, output: `${r.stdout}${r.stderr}` };
}

/** Writes the block where it belongs in `dir` and runs it; throws with its output when it fails. */
function runBlock(b: Block, dir: string): void {
  if (b.file !== undefined) {
    fs.mkdirSync(path.dirname(path.join(dir, b.file)), { recursive: true });
    fs.writeFileSync(path.join(dir, b.file), b.code);
  }
  if (!runs(b)) return;
  const base = `block-${b.line}`;
  let r: Ran;
  switch (b.lang) {
    case 'js':
      fs.writeFileSync(path.join(dir, `${base}.js`), b.code);
      r = run(process.execPath, [`${base}.js`], dir);
      break;
    case 'mjs':
      fs.writeFileSync(path.join(dir, `${base}.mjs`), b.code);
      r = run(process.execPath, [`${base}.mjs`], dir);
      break;
    case 'ts': {
      const js = ts.transpileModule(b.code, {
        compilerOptions: {
          module: ts.ModuleKind.CommonJS,
          target: ts.ScriptTarget.ES2022,
          esModuleInterop: true,
        },
        fileName: b.file ?? `${base}.ts`,
      }).outputText;
      fs.writeFileSync(path.join(dir, `${base}.js`), js);
      r = run(process.execPath, [`${base}.js`], dir);
      break;
    }
    case 'sh':
      // stderr joins stdout, in order, as a terminal would show them.
      fs.writeFileSync(path.join(dir, `${base}.sh`), `set -euo pipefail\nexec 2>&1\n${b.code}`);
      r = run('bash', [`${base}.sh`], dir);
      break;
    case 'c': {
      const file = b.file ?? `${base}.c`;
      if (b.file === undefined) fs.writeFileSync(path.join(dir, file), b.code);
      const include = ['native', 'include'].map((d) => path.join(ROOT, d)).filter((d) => fs.existsSync(d));
      const flags = ['-std=c11', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', '-x', 'c'];
      r = run('cc', [...flags, '-I', dir, ...include.flatMap((d) => ['-I', d]), file], dir);
      break;
    }
    default:
      throw new Error(`${b.doc}:${b.line}: no runner for '${b.lang}'`);
  }
  if (r.status !== 0) {
    throw new Error(
      `${b.doc}:${b.line} (${b.lang}) exited with status ${r.status}:\n${r.output}\n--- the block:\n${b.code}`,
    );
  }
  if (b.output !== undefined) {
    const missing = missingOutput(b.output, r.stdout);
    if (missing) throw new Error(`${b.doc}:${b.line}: ${missing}:\n${r.stdout}`);
  }
}

test('every code block of the documents says what it is (a language after the fence)', () => {
  const untagged = DOCS.flatMap(({ blocks }) =>
    blocks.filter((b) => b.lang === '').map((b) => `${b.doc}:${b.line}`),
  );
  expect(untagged).toEqual([]);
});

test('the README has runnable examples of the library and of the CLI', () => {
  const readme = DOCS.find((d) => d.doc === 'README.md')!.blocks.filter(runs);
  expect(readme.some((b) => b.lang === 'js' || b.lang === 'ts' || b.lang === 'mjs')).toBe(true);
  expect(readme.some((b) => b.lang === 'sh')).toBe(true);
});

for (const { doc, blocks } of DOCS) {
  const active = blocks.filter((b) => runs(b) || b.file !== undefined);
  if (active.length === 0) continue;
  describe(doc, () => {
    let dir: string;
    beforeAll(() => {
      dir = consumerProject(slug(doc));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    for (const b of active) {
      const what =
        b.file !== undefined && !runs(b) ? `writes ${b.file}` : `runs (${[b.lang, ...b.attrs].join(' ')})`;
      const reason =
        b.needs === undefined
          ? undefined
          : (NEEDS[b.needs] ?? (b.needs in NEEDS ? undefined : `unknown need '${b.needs}'`));
      if (reason !== undefined) {
        console.warn(`${doc}:${b.line} cannot run here and is skipped: ${reason}`);
        test.skip(`${doc}:${b.line} ${what} (needs ${b.needs})`, () => undefined);
        continue;
      }
      test(`${doc}:${b.line} ${what}`, () => runBlock(b, dir), TIMEOUT_MS);
    }
  });
}

test(
  'every ts block type-checks against the published .d.ts',
  () => {
    const dir = consumerProject('typecheck');
    try {
      const files: string[] = [];
      for (const { doc, blocks } of DOCS) {
        for (const b of blocks) {
          if (b.lang !== 'ts' || !runs(b)) continue;
          const name = path.join(slug(doc), b.file ?? `block-${b.line}.ts`);
          fs.mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
          // Each block is a module of its own, as a user's file would be.
          fs.writeFileSync(
            path.join(dir, name),
            /^\s*(import|export)\s/m.test(b.code) ? b.code : `${b.code}export {};\n`,
          );
          files.push(name);
        }
      }
      expect(files.length).toBeGreaterThan(0);
      const tsconfig = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'node16',
          moduleResolution: 'node16',
          target: 'ES2022',
          lib: ['ES2022', 'esnext.disposable'],
          types: ['node'],
          typeRoots: [path.join(dir, 'node_modules/@types')],
        },
        files,
      };
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
      const r = run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], dir);
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  TIMEOUT_MS,
);
