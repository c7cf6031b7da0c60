/**
 * `pymalloc layout --from-c`: a header with nested, anonymous and untagged records, unions, arrays, pointers,
 * enums, typedefs, packing and alignment (test/codegen/data/import.h) becomes a description whose TypeScript
 * constants equal what gcc computes for the original header (a C program prints every sizeof and offsetof),
 * and whose generated assertions hold against the original header on every target (clang --target). Plus the
 * errors: clang missing, a header clang rejects, what cannot be described yet.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  computeLayout,
  emitC,
  emitTs,
  flattenRecord,
  fromJson,
  getTarget,
  hostTargetName,
  importCHeader,
  type Layout,
  LayoutError,
  TARGET_NAMES,
} from '../../codegen';
import { runCli } from '../cli/run-cli';
import { compileFor, HAVE_CLANG, HAVE_GCC, scratchDir } from './compilers';
import { evalTs } from './ts-module';

const HEADER = join(__dirname, 'data', 'import.h');
const host = getTarget(hostTargetName());

if (!HAVE_CLANG) {
  console.warn('clang not found: the --from-c tests were SKIPPED');
  it('--from-c SKIPPED: clang is not installed (fails under CI=true)', () => {
    expect(process.env['CI']).not.toBe('true');
  });
} else {
  const description = importCHeader(HEADER);
  const decls = fromJson(description);
  const headerText = readFileSync(HEADER, 'utf8');
  /** How the original header spells a record: `struct x` where it has the tag, the typedef name otherwise. */
  const spell = (name: string, kind: string) =>
    new RegExp(`\\b${kind} (__attribute__\\(\\(\\w+(\\(\\d+\\))?\\)\\) )?${name}\\b`).test(headerText)
      ? `${kind} ${name}`
      : name;

  describe('the description read from import.h', () => {
    it('has every declaration of the header and none of the system headers', () => {
      const names = description.types.map((t) => `${t.kind} ${t.name}`).sort();
      expect(names).toEqual(
        [
          'enum color',
          'enum shape_kind',
          'opaque opaque_handle',
          'struct cacheline',
          'struct flags',
          'struct msg',
          'struct pack2',
          'struct pragma_packed',
          'struct tagless',
          'struct tree',
          'struct vec2',
          'struct wire',
          'typedef port_t',
          'typedef ports_t',
          'typedef vec2_t',
          'union value',
        ].sort(),
      );
    });
    it('keeps enum values, including implicit ones, and picks the enum type C does', () => {
      const color = description.types.find((t) => t.name === 'color')!;
      expect(color['members']).toEqual({ RED: 0, GREEN: 5, BLUE: 6 });
      expect(color['underlying']).toBe('uint');
      expect(description.types.find((t) => t.name === 'shape_kind')!['underlying']).toBe('int');
    });
  });

  /** A C program that prints every size and offset of the layout's records, from the original header. */
  function probeProgram(layout: Layout): { source: string; expected: Map<string, number> } {
    const lines = [
      `#include ${JSON.stringify(resolve(HEADER))}`,
      '#include <stdio.h>',
      '#include <string.h>',
      'int main(void) {',
    ];
    const expected = new Map<string, number>();
    const mod = evalTs(emitTs(layout, { source: 'import.h' }));
    for (const [rec, rl] of layout.records) {
      const c = spell(rec.name!, rec.kind);
      const upper = rec.name!.toUpperCase();
      lines.push(`printf("SIZEOF_${upper} %zu\\n", sizeof(${c}));`);
      lines.push(`printf("ALIGNOF_${upper} %zu\\n", _Alignof(${c}));`);
      expected.set(`SIZEOF_${upper}`, mod[`SIZEOF_${upper}`] as number);
      expected.set(`ALIGNOF_${upper}`, mod[`ALIGNOF_${upper}`] as number);
      for (const f of flattenRecord(rl)) {
        if (!f.path.every((p) => /^[A-Za-z_]\w*$/.test(p))) continue; // unnamed bitfields have no name
        const designator = f.path
          .map((p, i) => (i === f.path.length - 1 ? p : `${p}${'[0]'.repeat(f.pathDims[i]!)}`))
          .join('.');
        const suffix = `${upper}_${f.path.join('_').toUpperCase()}`;
        if (f.member.bitfield) {
          // C has no offsetof of a bitfield: set all its bits in a zeroed record and find them.
          lines.push(
            `{ ${c} v; memset(&v, 0, sizeof v); v.${designator} = -1; const unsigned char *b = (const unsigned char *)&v;`,
            '  int first = -1, count = 0; for (size_t i = 0; i < sizeof v * 8; i++) if ((b[i / 8] >> (i % 8)) & 1) { if (first < 0) first = (int)i; count++; }',
            `  printf("BITOFFSETOF_${suffix} %d\\nBITWIDTHOF_${suffix} %d\\n", first, count); }`,
          );
          for (const k of ['BITOFFSETOF', 'BITWIDTHOF'])
            expected.set(`${k}_${suffix}`, mod[`${k}_${suffix}`] as number);
          continue;
        }
        const name = `OFFSETOF_${suffix}`;
        lines.push(`printf("${name} %zu\\n", offsetof(${c}, ${designator}));`);
        expected.set(name, mod[name] as number);
      }
    }
    lines.push('return 0;', '}');
    return { source: lines.join('\n'), expected };
  }

  describe('TypeScript constants equal gcc’s sizeof and offsetof of the original header', () => {
    it(`on the host (${host.name})`, () => {
      expect(HAVE_GCC).toBe(true);
      const layout = computeLayout(decls, host);
      const { source, expected } = probeProgram(layout);
      const dir = scratchDir();
      writeFileSync(join(dir, 'probe.c'), source);
      const cc = spawnSync('gcc', ['-std=c11', '-o', join(dir, 'probe'), join(dir, 'probe.c')], {
        encoding: 'utf8',
      });
      expect(cc.stderr).toBe('');
      const run = spawnSync(join(dir, 'probe'), { encoding: 'utf8' });
      expect(run.status).toBe(0);
      const got = new Map(
        run.stdout
          .trim()
          .split('\n')
          .map((l) => {
            const [k, v] = l.split(' ');
            return [k!, Number(v)] as const;
          }),
      );
      expect(got.size).toBeGreaterThan(60);
      expect(Object.fromEntries(expected)).toEqual(Object.fromEntries(got));
    });
  });

  /** The generated header's assertion blocks, compiled after the original header instead of its own types. */
  function assertionsAgainstOriginal(layouts: Layout[]): string {
    const generated = emitC(layouts, { source: 'import.h', guard: 'IMPORT_CHECK_H' });
    const macros = generated.slice(
      generated.indexOf('#ifndef PYM_LAYOUT_MACROS'),
      generated.indexOf('#endif /* PYM_LAYOUT_MACROS */'),
    );
    let asserts = generated.slice(
      generated.indexOf(`#if ${layouts[0]!.target.cGuard}`),
      generated.lastIndexOf('#endif /* IMPORT_CHECK_H */'),
    );
    // A record the header names only by a typedef (`typedef struct { } tagless;`) is `struct tagless` in the
    // description: spell it the header's way.
    for (const [rec] of layouts[0]!.records) {
      const c = spell(rec.name!, rec.kind);
      if (c === rec.name) asserts = asserts.replaceAll(`${rec.kind} ${rec.name}`, c);
    }
    // The size-with-n-elements macros of flexible arrays are part of what is checked.
    const withMacros: string[] = [];
    let inMacro = false;
    for (const l of generated.split('\n')) {
      if (/^#define SIZEOF_\w+_WITH\(/.test(l)) inMacro = true;
      if (inMacro) withMacros.push(l);
      if (inMacro && !l.endsWith('\\')) inMacro = false;
    }
    return `#include ${JSON.stringify(resolve(HEADER))}\n${macros}#endif\n${withMacros.join('\n')}\n${asserts}`;
  }

  describe('the round trip C → description → header holds on every target', () => {
    for (const name of TARGET_NAMES) {
      it(name, () => {
        const target = getTarget(name);
        // The description is portable; clang parses it for each target all the same.
        const here = fromJson(importCHeader(HEADER, { triple: target.clangTriple }));
        const layout = computeLayout(here, target);
        const against = compileFor(assertionsAgainstOriginal([layout]), target, host);
        expect(against.output).toBe('');
        const own = compileFor(emitC([layout], { source: 'import.h' }), target, host);
        expect(own.output).toBe('');
      });
    }
  });

  describe('the CLI', () => {
    it('--from-c writes the description, the header and the accessors; the JSON gives the same outputs', async () => {
      const dir = scratchDir();
      const [json, h, ts] = ['import.json', 'import_layout.h', 'import-layout.ts'].map((f) => join(dir, f));
      // Every target, the host first (it gets the accessors).
      const targets = [host.name, ...TARGET_NAMES.filter((n) => n !== host.name)];
      const flags = targets.flatMap((n) => ['--target', n]);
      const r = await runCli([
        'layout',
        '--from-c',
        HEADER,
        ...flags,
        '--json',
        json!,
        '--c',
        h!,
        '--ts',
        ts!,
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(readFileSync(json!, 'utf8')).types).toEqual(description.types);
      expect(compileFor(readFileSync(h!, 'utf8'), host, host).output).toBe('');
      const again = await runCli(['layout', json!, '--target', host.name, '--ts', join(dir, 'again.ts')]);
      expect(again.code).toBe(0);
      const strip = (s: string) => s.split('\n').slice(1).join('\n');
      expect(strip(readFileSync(join(dir, 'again.ts'), 'utf8'))).toBe(strip(readFileSync(ts!, 'utf8')));
    });
    it('a missing clang is one line naming it, exit 2', async () => {
      const saved = process.env['PYMALLOC_CLANG'];
      process.env['PYMALLOC_CLANG'] = join(scratchDir(), 'no-such-clang');
      try {
        const dir = scratchDir();
        const r = await runCli(['layout', '--from-c', HEADER, '--ts', join(dir, 'x.ts')]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/--from-c needs clang, and '.*no-such-clang' was not found/);
        expect(existsSync(join(dir, 'x.ts'))).toBe(false);
      } finally {
        if (saved === undefined) delete process.env['PYMALLOC_CLANG'];
        else process.env['PYMALLOC_CLANG'] = saved;
      }
    });
    it('a header clang rejects: one line with clang’s first error', async () => {
      const dir = scratchDir();
      writeFileSync(join(dir, 'bad.h'), 'struct broken { int x }\n');
      const r = await runCli(['layout', '--from-c', join(dir, 'bad.h')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/bad\.h: clang could not parse it: .*error: expected ';'/);
    });
    it('a description file and --from-c together, or neither, is a usage error', async () => {
      expect((await runCli(['layout', '--from-c', HEADER, 'x.json'])).code).toBe(2);
      expect((await runCli(['layout'])).stderr).toMatch(/--from-c/);
      expect((await runCli(['layout', 'x.json', '--json', 'y.json'])).stderr).toMatch(/--json writes/);
    });
  });

  describe('what cannot be described yet is an error naming the declaration and field', () => {
    const importText = (text: string) => {
      const dir = scratchDir();
      writeFileSync(join(dir, 'h.h'), text);
      try {
        importCHeader(join(dir, 'h.h'));
      } catch (err) {
        if (err instanceof LayoutError) return err.message;
        throw err;
      }
      return 'no error';
    };
    it('a pointer to an array', () => {
      expect(importText('struct pa { int (*rows)[4]; };')).toMatch(/pa\.rows: a pointer to an array/);
    });
    it('a pointer to an array of unknown length', () => {
      expect(importText('struct fa { int n; int (*f)[]; };')).toMatch(/fa\.f: a pointer to an array/);
    });
  });
}
