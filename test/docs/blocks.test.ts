/** The docs-examples convention itself: which blocks run, `file=`, `needs=`, and how `text output` is matched. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { missingOutput, parseBlocks, runs } from './blocks';

function parse(markdown: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-blocks-'));
  try {
    fs.writeFileSync(path.join(dir, 'doc.md'), markdown);
    return parseBlocks(dir, 'doc.md');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('js, ts, mjs and sh blocks run; no-run, text, console, json and plain c do not; c compile does', () => {
  const md = [
    'js',
    'ts',
    'mjs',
    'sh',
    'ts no-run',
    'text',
    'console',
    'json',
    'c',
    'c compile',
    'py file=x.py',
  ]
    .map((info) => `\`\`\`${info}\nx\n\`\`\`\n`)
    .join('\n');
  expect(parse(md).map(runs)).toEqual([
    true,
    true,
    true,
    true,
    false,
    false,
    false,
    false,
    false,
    true,
    false,
  ]);
});

test('file= and needs= are read from the info string; text output attaches to the block before it', () => {
  const [a, b, out] = parse(
    '```ts file=point.ts\nexport {};\n```\n\n```sh needs=python3-dev\necho hi\n```\n\n```text output\nhi\n```\n',
  );
  expect(a).toMatchObject({ lang: 'ts', file: 'point.ts', needs: undefined, line: 1, code: 'export {};\n' });
  expect(b).toMatchObject({ lang: 'sh', needs: 'python3-dev', output: 'hi\n' });
  expect(out?.lang).toBe('text');
});

test('a text output block after a block that does not run is an error, and so is an unclosed fence', () => {
  expect(() => parse('```text\nx\n```\n```text output\ny\n```\n')).toThrow(/must follow a block that runs/);
  expect(() => parse('```js\nx\n')).toThrow(/doc\.md:1: a code fence that is never closed/);
});

test('expected output lines must appear in order; … stands for any text', () => {
  const actual = 'trace t: 6 operations\ntime 12.5 ns/op\nreturned 98.1% of it\n';
  expect(missingOutput('trace t: … operations\nreturned …% of it\n', actual)).toBeUndefined();
  expect(missingOutput('returned …% of it\ntrace t: … operations\n', actual)).toMatch(
    /no line matching "trace t/,
  );
  expect(missingOutput('time 13.5 ns/op\n', actual)).toMatch(/no line matching/);
  expect(missingOutput('time (.*) ns/op\n', actual)).toMatch(/no line matching/); // not a regular expression
});
