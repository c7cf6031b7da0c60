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

/**
 * What `generateLayoutOutputs` (lib/cli/layout.ts) makes from a description, computed by the build in a child
 * process run in `cwd`: a .ts description is imported through module hooks, which jest's sandbox does not run.
 */
export function layoutOutputsInChild(
  file: string,
  options: { target?: string[]; c?: string; ts?: string },
  cwd: string = ROOT,
): Map<string, string> {
  const layoutModule = join(ROOT, 'dist', 'lib', 'cli', 'layout.js');
  if (!existsSync(layoutModule))
    throw new Error(`${layoutModule} is missing: run \`npm run build:ts\` first`);
  const script =
    `require(${JSON.stringify(layoutModule)})` +
    `.generateLayoutOutputs(${JSON.stringify(file)}, ${JSON.stringify({ target: [], ...options })})` +
    '.then((o) => process.stdout.write(JSON.stringify([...o.files])))';
  const r = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`generateLayoutOutputs(${file}) failed: ${r.stderr}`);
  return new Map(JSON.parse(r.stdout) as Array<[string, string]>);
}
