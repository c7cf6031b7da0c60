/**
 * Runs a script in a child Node process (this Node, process.execPath) and asserts that it ended by itself,
 * normally: no signal (SIGSEGV, SIGABRT), no C++ terminate, no timeout, nothing on stderr. Returns the one JSON
 * line it printed. For the cases that could crash the process running the tests.
 */
import { spawnSync } from 'node:child_process';

export function runChild(args: readonly string[], label: string, timeout = 120_000): Record<string, unknown> {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout, maxBuffer: 16 * 1024 * 1024 });
  expect({
    case: label,
    status: r.status,
    signal: r.signal,
    error: r.error?.message,
    stderr: r.stderr,
  }).toEqual({
    case: label,
    status: 0,
    signal: null,
    error: undefined,
    stderr: '',
  });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}
