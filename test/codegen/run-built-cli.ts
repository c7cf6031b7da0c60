/**
 * Runs the built CLI (dist/lib/cli/main.js, which `npm test` builds first) in a child process. Loading a .ts
 * description goes through Node's module hooks, which jest's sandbox does not run, so those tests use this.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const BUILT_CLI = join(ROOT, 'dist', 'lib', 'cli', 'main.js');

export interface BuiltCliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBuiltCli(
  args: string[],
  options: { cwd?: string; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): BuiltCliResult {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run \`npm run build:ts\` first`);
  const r = spawnSync(process.execPath, [...(options.nodeArgs ?? []), BUILT_CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
