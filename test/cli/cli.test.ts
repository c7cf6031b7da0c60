/**
 * The CLI as a whole, over every command the program registers (so commands added later are covered too):
 * `pymalloc --help` lists each on one line, each has `--help` with an example, and a user's mistake (unknown
 * command or option, bad number, missing file, stray argument) ends in one line on stderr and a non-zero status,
 * never a stack trace. The commands run in this process through main(), like the `pymalloc` binary runs them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram } from '../../lib/cli/main';
import { runCli } from './run-cli';

const ROOT = join(__dirname, '..', '..');
const MISSING = join(ROOT, 'test', 'no-such-dir', 'missing-file.txt');

const run = runCli;

/** One line on stderr, no stack trace, nothing on stdout, a non-zero status. */
function expectOneLineError(result: { code: number; stdout: string; stderr: string }): void {
  expect(result.code).not.toBe(0);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^pymalloc( [a-z]+)?: \S/);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
}

const program = buildProgram();
const commands: readonly Command[] = program.commands;
const names = commands.map((c) => c.name());

/** Stand-ins for a command's required arguments: a file that does not exist. */
function requiredArgs(cmd: Command): string[] {
  return cmd.registeredArguments.filter((a) => a.required).map(() => MISSING);
}

/** Options that take a number: a default that starts with a digit, or a value named <n> or <bytes>. */
function numericOptions(cmd: Command): Option[] {
  return cmd.options.filter(
    (o) =>
      (o.required || o.optional) &&
      (/^\d/.test(String(o.defaultValue ?? '')) || /<(n|bytes|count)>/.test(o.flags)),
  );
}

test('the program registers the demo first, and every command has a description', () => {
  expect(names[0]).toBe('demo');
  expect(names).toEqual(expect.arrayContaining(['demo', 'pages', 'layout']));
  for (const cmd of commands) expect(cmd.description()).not.toBe('');
});

test('pymalloc --help lists every command on one line each', async () => {
  const { code, stdout } = await run(['--help']);
  expect(code).toBe(0);
  const lines = stdout.split('\n');
  const start = lines.indexOf('Commands:');
  expect(start).toBeGreaterThan(0);
  const listed = lines.slice(start + 1, lines.indexOf('', start));
  // Each line names a command; none is a continuation of the one before.
  expect(listed.map((l) => /^ {2}(\S+)/.exec(l)?.[1])).toEqual([...names, 'help']);
  for (const cmd of commands) {
    const line = listed.find((l) => l.startsWith(`  ${cmd.name()} `))!;
    expect(line).toContain(cmd.summary() || cmd.description());
  }
});

test.each(names)('%s --help has an example', async (name) => {
  const { code, stdout, stderr } = await run([name, '--help']);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toMatch(new RegExp(`^Usage: pymalloc ${name} `));
  expect(stdout).toMatch(new RegExp(`\\nExamples?:\\n {2}\\$ pymalloc ${name}`));
});

test.each(names)('%s: an unknown option is one line naming it', async (name) => {
  const result = await run([name, '--no-such-option']);
  expectOneLineError(result);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("unknown option '--no-such-option'");
  expect(result.stderr).toContain(`pymalloc ${name} --help`);
});

test.each(names)('%s: a bad number is one line', async (name) => {
  const cmd = commands.find((c) => c.name() === name)!;
  for (const option of numericOptions(cmd)) {
    const result = await run([name, ...requiredArgs(cmd), option.long!, 'lots']);
    expectOneLineError(result);
    // Without arguments to check first, the message is about the option itself.
    if (requiredArgs(cmd).length === 0) expect(result.stderr).toContain(option.long!);
  }
});

test.each(names)('%s: a missing file or a stray argument is one line', async (name) => {
  const cmd = commands.find((c) => c.name() === name)!;
  const args = cmd.registeredArguments.length > 0 ? [MISSING] : ['stray-argument'];
  const result = await run([name, ...args]);
  expectOneLineError(result);
  expect(result.code).toBe(2);
});

test.each(
  names.filter((name) =>
    commands.find((c) => c.name() === name)!.registeredArguments.some((a) => a.required),
  ),
)('%s: a missing required argument is one line', async (name) => {
  expectOneLineError(await run([name]));
});

test('an unknown command is one line, with a suggestion when one is close', async () => {
  const unknown = await run(['no-such-command']);
  expectOneLineError(unknown);
  expect(unknown.stderr).toBe("pymalloc: unknown command 'no-such-command' (see 'pymalloc --help')\n");
  const close = await run(['dem']);
  expectOneLineError(close);
  expect(close.stderr).toContain('Did you mean demo?');
});

test('--version prints the version', async () => {
  const { code, stdout } = await run(['--version']);
  expect(code).toBe(0);
  expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
});

// The binary itself (after `npm run build:ts`): the exit status of a real process.
const BIN = join(ROOT, 'dist', 'lib', 'cli', 'main.js');
(existsSync(BIN) ? test : test.skip)('the built binary exits 2 with one line for a mistake', () => {
  for (const args of [['no-such-command'], ['demo', '--objects', 'lots'], ['pages', '--bogus']]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    expect({ args, status: r.status, stdout: r.stdout }).toEqual({ args, status: 2, stdout: '' });
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  }
});
