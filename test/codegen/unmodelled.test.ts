/**
 * A description the compiler has no model of on one target (bitfields on mingw, x86_64-windows-gnu): with no
 * --target named, `pymalloc layout --c` leaves that target out of the header, says so on stderr, and the header
 * refuses that target with its #error (PYM_LAYOUT_NO_TARGET_CHECK turns it off); named, it is an error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-unmodelled-'));
  writeFileSync(
    join(dir, 'flags.json'),
    JSON.stringify({
      types: [
        {
          kind: 'struct',
          name: 'flags',
          fields: [
            { name: 'a', type: 'uint32', bits: 3 },
            { name: 'b', type: 'uint32', bits: 5 },
            { name: 'n', type: 'int32' },
          ],
        },
      ],
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const layout = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, 'layout', 'flags.json', ...args], { cwd: dir, encoding: 'utf8' });

test('every target but mingw is in the header; mingw is left out, with a warning, and refused by #error', () => {
  const r = layout('--c', 'flags.h');
  expect(r.status).toBe(0);
  expect(r.stderr).toBe(
    'pymalloc layout: warning: flags.a: bitfields are not modelled on x86_64-windows-gnu (GCC\'s ms_struct layout) yet; limit the record or member to other targets with "targets"; the header leaves x86_64-windows-gnu out\n',
  );
  const header = readFileSync(join(dir, 'flags.h'), 'utf8');
  expect(header).toMatch(/x86_64-linux-gnu/);
  expect(header.split('\n').slice(0, 5).join('\n')).not.toMatch(/x86_64-windows-gnu/);
  expect(header).toMatch(/#error "FLAGS_H: this header has no layout for the target being compiled/);
});

test('named, the target is an error naming the member and the target (exit 2)', () => {
  const r = layout('--c', 'flags-mingw.h', '--target', 'x86_64-windows-gnu');
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^pymalloc layout: flags\.a: bitfields are not modelled on x86_64-windows-gnu/);
});
