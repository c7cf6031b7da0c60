/**
 * mingw (x86_64-windows-gnu) bitfields: GCC's ms_struct layout as clang lays it out (`-mms-bitfields`, the
 * default for MinGW targets), rule by rule, for the shapes GCC for mingw lays out the same way (the cases of
 * test/codegen/mingw-cases.ts). Each case isolates one rule of the ms_struct branch of codegen/layout.ts:
 * - clang's record layout (size, alignment and the bit offset of every field) equals the model's;
 * - the case is laid out differently by the MSVC model, the System V model, or both (as listed), so that it
 *   checks what is particular to ms_struct rather than what the three rules share;
 * - the header of all the cases compiles with clang for mingw with all its asserts, as C11 and as C++17.
 * The shapes GCC and clang lay out differently are refused with an UnmodelledError naming the member, the
 * target and the shape (test/codegen/mingw-gcc.test.ts shows the two compilers differ on each).
 * And the CLI: `pymalloc layout --c` puts mingw in the header of a description with modelled bitfields (no
 * warning, nothing left out), and `--target x86_64-windows-gnu` writes a header clang accepts for it
 * (test/codegen/unmodelled.test.ts has the CLI with a refused one).
 * The random descriptions of test/codegen/property-model.test.ts check the same model on 2,000 more.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeLayout,
  emitC,
  getTarget,
  hostTargetName,
  type NamedType,
  type RecordLayout,
  TARGET_NAMES,
  UnmodelledError,
} from '../../codegen';
import { clangDump, compileFor, type Dumped, HAVE_CLANG, parseDump } from './compilers';
import { CASES, en, REFUSED } from './mingw-cases';

const mingw = getTarget('x86_64-windows-gnu');
const msvc = getTarget('x86_64-windows-msvc');
const sysv = getTarget('x86_64-linux-gnu');
const host = getTarget(hostTargetName());

const decls: NamedType[] = [en, ...CASES.map((c) => c.record)];
const layout = computeLayout(decls, mingw);
const header = emitC([layout], { source: 'mingw bitfields test' });

const shape = (rl: RecordLayout): Dumped => ({
  size: rl.size * 8,
  align: rl.align * 8,
  offsets: rl.members.map((m) => (m.bitfield ? m.bitfield.bitOffset : m.offset * 8)),
});

describe('mingw bitfields, rule by rule, against clang --target x86_64-windows-gnu', () => {
  if (!HAVE_CLANG) {
    console.warn('clang not found: the mingw bitfield cases were SKIPPED');
    it('SKIPPED: clang is not installed (fails under CI=true)', () => {
      expect(process.env['CI']).not.toBe('true');
    });
    return;
  }
  const r = clangDump(header, mingw.clangTriple);
  const dumped = parseDump(r.dump);

  it('clang accepts the header with all its asserts (C11 and C++17)', () => {
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
    for (const lang of ['c', 'c++'] as const) {
      const c = compileFor(header, mingw, host, lang);
      expect({ lang, output: c.output }).toEqual({ lang, output: '' });
    }
  });

  for (const c of CASES) {
    it(`${c.record.name}: ${c.rule}`, () => {
      const rl = layout.records.get(c.record)!;
      expect(shape(rl)).toEqual(dumped.get(c.record.name!));
      // MSVC has no __int128: that case is compared with System V only.
      const models = c.record.name === 'mg_int128' ? (['sysv'] as const) : (['msvc', 'sysv'] as const);
      const differing = models.filter((m) => {
        const other = computeLayout([en, c.record], m === 'msvc' ? msvc : sysv).records.get(c.record)!;
        return JSON.stringify(shape(other)) !== JSON.stringify(shape(rl));
      });
      expect(differing).toEqual(c.differs);
    });
  }
});

describe('mingw refuses the shapes GCC and clang lay out differently, naming the member, target and shape', () => {
  for (const c of REFUSED) {
    it(`${c.member}: ${c.shape}`, () => {
      let err: unknown;
      try {
        computeLayout([c.record], mingw);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnmodelledError);
      const u = err as UnmodelledError;
      expect({ path: u.path, target: u.target }).toEqual({ path: c.member, target: mingw.name });
      expect(
        u.message.startsWith(
          `${c.member}: ${c.shape} is not modelled on x86_64-windows-gnu: gcc and clang lay it out differently there (GCC `,
        ),
      ).toBe(true);
      expect(u.message).toMatch(/clang[^;]*\); limit the record or member to other targets with "targets"$/);
      // Only mingw refuses it.
      for (const name of TARGET_NAMES.filter((n) => n !== mingw.name))
        computeLayout([c.record], getTarget(name));
    });
  }
});

describe('the CLI writes mingw into the header of a description with bitfields', () => {
  let dir: string;
  const CLI = join(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pymalloc-mingw-'));
    writeFileSync(
      join(dir, 'flags.json'),
      JSON.stringify({
        types: [
          {
            kind: 'struct',
            name: 'flags',
            fields: [
              { name: 'a', type: 'uint32', bits: 3 },
              { name: 'b', type: 'uint16', bits: 5 },
              { name: 'n', type: 'int32' },
            ],
          },
        ],
      }),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const layoutCli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, 'layout', 'flags.json', ...args], { cwd: dir, encoding: 'utf8' });

  it.each<[string, string, string[]]>([
    ['with no --target: every target is in the header, mingw included, and nothing is said', 'flags.h', []],
    [
      '--target x86_64-windows-gnu writes the header (exit 0) and clang accepts it',
      'flags-mingw.h',
      ['--target', 'x86_64-windows-gnu'],
    ],
  ])('%s', (_name, header, extra) => {
    const r = layoutCli('--c', header, ...extra);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const text = readFileSync(join(dir, header), 'utf8');
    if (extra.length === 0) expect(text.split('*/')[1]).toMatch(/x86_64-windows-gnu/);
    expect(text).toContain('"sizeof(flags) on x86_64-windows-gnu"');
    if (!HAVE_CLANG) {
      console.warn(`clang not found: compiling ${header} for mingw SKIPPED`);
      expect(process.env['CI']).not.toBe('true');
      return;
    }
    expect(compileFor(text, mingw, host).output).toBe('');
  });
});
