/**
 * examples/c-addon, as a user would build it: copied into a project whose node_modules/pymalloc is this repo,
 * built with node-gyp and with cmake-js, main.ts compiled with tsc against the published types, and run in a
 * child process (which must exit normally): TypeScript builds a list in the heap, C walks it through real
 * pointers and writes results back, TypeScript reads them, and C gets an error (never a crash) outside the
 * heap and after destroy(). The generated files are checked fresh from both descriptions (JSON and TS).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { layoutOutputsInChild } from '../codegen/run-built-cli';
import { CMAKE_JS, makeProject, NODE_GYP, type Project, REPO, TSC } from './project';

const EXAMPLE = join(REPO, 'examples', 'c-addon');
let project: Project;

beforeAll(() => {
  project = makeProject({ '.': 'examples/c-addon' });
  project.node(
    [
      TSC,
      'main.ts',
      '--strict',
      '--module',
      'node16',
      '--moduleResolution',
      'node16',
      '--target',
      'es2022',
      '--types',
      'node',
      '--typeRoots',
      join(REPO, 'node_modules', '@types'),
      '--skipLibCheck',
    ],
    'tsc main.ts',
  );
}, 120_000);

afterAll(() => project?.remove());

function runMain(count: number): { count: number; prefix: number; sharedCount: number; failures: string[] } {
  return JSON.parse(project.node(['main.js', String(count)], 'node main.js'));
}

test('the generated header and accessors are fresh, and the JSON and TypeScript descriptions agree', () => {
  for (const description of ['list.json', 'list.ts']) {
    // In a child process: a .ts description is imported through module hooks, which jest does not run.
    const files = layoutOutputsInChild(
      description,
      { c: 'generated/list.h', ts: 'generated/list-layout.ts' },
      EXAMPLE,
    );
    for (const [name, text] of files) {
      const committed = readFileSync(join(EXAMPLE, name), 'utf8').replace(
        'from list.json',
        `from ${description}`,
      );
      expect({ description, name, text }).toEqual({ description, name, text: committed });
    }
  }
});

test('built with node-gyp: TypeScript builds, C walks and writes back, TypeScript reads', () => {
  project.node([NODE_GYP, 'rebuild'], 'node-gyp rebuild');
  const r = runMain(10_000);
  expect(r.failures).toEqual([]);
  expect(r.count).toBe(10_000);
  expect(r.sharedCount).toBe(10_000); // C walked a shared heap's list too
  let prefix = 0;
  for (let i = 0; i < 10_000; i++) prefix += i * 3 - 7;
  expect(r.prefix).toBe(prefix);
});

test('built with cmake-js: the same', () => {
  rmSync(join(project.dir, 'build'), { recursive: true, force: true });
  project.node([CMAKE_JS, 'compile'], 'cmake-js compile');
  const r = runMain(1_000);
  expect(r).toEqual(
    expect.objectContaining({
      count: 1_000,
      failures: [],
      outside: 'ERR_PYMALLOC_INVALID_POINTER',
      leaves: 'ERR_PYMALLOC_INVALID_POINTER',
      cycle: 'ERR_PYMALLOC_CORRUPT',
      destroyed: 'ERR_PYMALLOC_DESTROYED',
    }),
  );
});
