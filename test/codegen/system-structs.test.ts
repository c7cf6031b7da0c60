/**
 * One description (test/codegen/data/linux-structs.json: per-target members, a record on Linux targets only,
 * packedOn) against the real glibc headers: `struct epoll_event` (packed on x86: glibc's bits/epoll.h packs it on i386 as on x86_64) and `struct stat`.
 * The host compiles with gcc and its own <sys/stat.h>, <sys/epoll.h>; the other Linux targets with
 * `clang --target` and the Debian cross headers (libc6-dev-arm64-cross, libc6-dev-i386-cross,
 * libc6-dev-armhf-cross) where installed; without them that target says it was skipped.
 * Our header is also compiled for every target with its own asserts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  computeLayout,
  emitC,
  flattenRecord,
  getTarget,
  hostTargetName,
  type Layout,
  parseJsonDescription,
  TARGET_NAMES,
} from '../../codegen';
import { compileFor, HAVE_CLANG, scratchDir } from './compilers';

const host = getTarget(hostTargetName());
const decls = parseJsonDescription(
  readFileSync(join(__dirname, 'data', 'linux-structs.json'), 'utf8'),
  'linux-structs.json',
);
const LINUX: Readonly<Record<string, string>> = {
  'x86_64-linux-gnu': 'x86_64-linux-gnu',
  'aarch64-linux-gnu': 'aarch64-linux-gnu',
  'i386-linux-gnu': 'i686-linux-gnu',
  'arm-linux-gnueabihf': 'arm-linux-gnueabihf',
};

/** Asserts, against the system's own declarations, every size and offset the model computed. */
function againstSystem(layout: Layout): string {
  const lines = ['#include <stddef.h>', '#include <sys/stat.h>', '#include <sys/epoll.h>'];
  let n = 0;
  for (const [rec, rl] of layout.records) {
    if (rec.name !== 'stat' && rec.name !== 'epoll_event') continue;
    const ty = `struct ${rec.name}`;
    lines.push(`_Static_assert(sizeof(${ty}) == ${rl.size}, "sizeof ${rec.name}");`);
    lines.push(`_Static_assert(_Alignof(${ty}) == ${rl.align}, "alignof ${rec.name}");`);
    for (const f of flattenRecord(rl)) {
      const d = f.path.join('.');
      lines.push(`_Static_assert(offsetof(${ty}, ${d}) == ${f.offset}, "offsetof ${rec.name}.${d}");`);
      lines.push(
        `_Static_assert(sizeof(((${ty} *)0)->${d}) == ${f.member.size}, "sizeof ${rec.name}.${d}");`,
      );
      n++;
    }
  }
  lines.push(`int checked_members = ${n};`, '');
  return lines.join('\n');
}

describe('struct stat and struct epoll_event from one description', () => {
  const layouts = TARGET_NAMES.map((n) => computeLayout(decls, getTarget(n)));

  it('the record limited to Linux targets is absent elsewhere; epoll_event is packed on x86 only (glibc packs it on i386 too)', () => {
    for (const l of layouts) {
      const names = [...l.records.keys()].map((r) => r.name);
      expect({ t: l.target.name, stat: names.includes('stat') }).toEqual({
        t: l.target.name,
        stat: l.target.name in LINUX,
      });
      const ev = [...l.records.entries()].find(([r]) => r.name === 'epoll_event')![1];
      expect({ t: l.target.name, size: ev.size }).toEqual({
        t: l.target.name,
        size: l.target.name === 'x86_64-linux-gnu' || l.target.name === 'i386-linux-gnu' ? 12 : 16,
      });
    }
  });

  for (const l of layouts) {
    it(`${l.target.name}: the generated header compiles with its asserts`, () => {
      if (l.target.name !== host.name && !HAVE_CLANG) {
        console.warn(`clang not found: ${l.target.name} SKIPPED`);
        expect(process.env['CI']).not.toBe('true');
        return;
      }
      const r = compileFor(emitC(layouts, { source: 'linux-structs.json' }), l.target, host);
      expect(r.output).toBe('');
      expect(r.ok).toBe(true);
    });
  }

  for (const [name, dir] of Object.entries(LINUX)) {
    it(`${name}: equals glibc's <sys/stat.h> and <sys/epoll.h>`, () => {
      const l = layouts.find((x) => x.target.name === name)!;
      const file = join(scratchDir(), 'system.c');
      writeFileSync(file, againstSystem(l));
      let r: ReturnType<typeof spawnSync>;
      if (name === host.name)
        r = spawnSync('gcc', ['-std=gnu11', '-fsyntax-only', file], { encoding: 'utf8' });
      else {
        const inc = `/usr/${dir}/include`;
        if (!HAVE_CLANG || !existsSync(join(inc, 'sys', 'stat.h'))) {
          console.warn(`${name}: no clang or no cross headers (Debian libc6-dev-*-cross) — SKIPPED`);
          expect(process.env['CI']).not.toBe('true');
          return;
        }
        r = spawnSync(
          'clang',
          [`--target=${l.target.clangTriple}`, '-std=gnu11', '-isystem', inc, '-fsyntax-only', file],
          {
            encoding: 'utf8',
          },
        );
      }
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
    });
  }
});
