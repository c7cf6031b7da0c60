/**
 * A user's addon project in a temporary directory, for the C-side tests: the files given, and
 * node_modules/pymalloc linked to this repository (as `npm install pymalloc` would provide it), so that
 * `require('pymalloc').includeDir` in binding.gyp and CMakeLists.txt resolves as it does for a user.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..');

export interface Project {
  readonly dir: string;
  /** Runs `node args…` in the project; throws with its output unless it exits 0. */
  node(args: readonly string[], what: string): string;
  remove(): void;
}

/** Copies `sources` (paths relative to the repo, each to the name given) into a new project. */
export function makeProject(sources: Readonly<Record<string, string>>): Project {
  const dir = mkdtempSync(join(tmpdir(), 'pymalloc-addon-'));
  for (const [to, from] of Object.entries(sources)) {
    cpSync(join(REPO, from), join(dir, to), {
      recursive: true,
      filter: (src) => !/[/\\](build|node_modules)$/.test(src),
    });
  }
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO, join(dir, 'node_modules', 'pymalloc'), 'dir');
  return {
    dir,
    node(args, what) {
      const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env: { ...process.env } });
      if (r.status !== 0) {
        throw new Error(
          `${what} failed (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`.slice(-6000),
        );
      }
      return r.stdout;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const NODE_GYP = join(REPO, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
export const CMAKE_JS = join(REPO, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
export const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
