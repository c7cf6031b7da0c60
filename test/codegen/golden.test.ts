/** pool_header and arena_object against CPython's layouts, on every target (expected values by hand). */
import { computeLayout, getTarget, TARGET_NAMES, type Target } from '../../codegen';
import { arena_object, pool_header } from '../../lib/layouts';

function offsets(target: Target, which: 'pool_header' | 'arena_object'): Record<string, number> {
  const decl = which === 'pool_header' ? pool_header : arena_object;
  const rl = computeLayout([decl], target).records.get(decl)!;
  const out: Record<string, number> = { SIZE: rl.size, ALIGN: rl.align };
  for (const m of rl.members) out[m.name] = m.offset;
  return out;
}

// 64-bit: pointers 8. pool_header: ref(8) freeblock nextpool prevpool, then four uints.
const POOL_64 = {
  SIZE: 48,
  ALIGN: 8,
  ref: 0,
  freeblock: 8,
  nextpool: 16,
  prevpool: 24,
  arenaindex: 32,
  szidx: 36,
  nextoffset: 40,
  maxnextoffset: 44,
};
// 32-bit: the union is 4 bytes (pointer and uint alike), every member 4 bytes.
const POOL_32 = {
  SIZE: 32,
  ALIGN: 4,
  ref: 0,
  freeblock: 4,
  nextpool: 8,
  prevpool: 12,
  arenaindex: 16,
  szidx: 20,
  nextoffset: 24,
  maxnextoffset: 28,
};
const ARENA_64 = {
  SIZE: 48,
  ALIGN: 8,
  address: 0,
  pool_address: 8,
  nfreepools: 16,
  ntotalpools: 20,
  freepools: 24,
  nextarena: 32,
  prevarena: 40,
};
const ARENA_32 = {
  SIZE: 28,
  ALIGN: 4,
  address: 0,
  pool_address: 4,
  nfreepools: 8,
  ntotalpools: 12,
  freepools: 16,
  nextarena: 20,
  prevarena: 24,
};

const EXPECTED: Record<string, [object, object]> = {
  'x86_64-linux-gnu': [POOL_64, ARENA_64],
  'aarch64-linux-gnu': [POOL_64, ARENA_64],
  'x86_64-windows-msvc': [POOL_64, ARENA_64],
  'i386-linux-gnu': [POOL_32, ARENA_32],
  'arm-linux-gnueabihf': [POOL_32, ARENA_32],
  wasm32: [POOL_32, ARENA_32],
  'riscv64-linux-gnu': [POOL_64, ARENA_64],
  'powerpc64le-linux-gnu': [POOL_64, ARENA_64],
  's390x-linux-gnu': [POOL_64, ARENA_64],
  'x86_64-linux-gnux32': [POOL_32, ARENA_32],
  'i686-windows-msvc': [POOL_32, ARENA_32],
  'aarch64-windows-msvc': [POOL_64, ARENA_64],
  'x86_64-windows-gnu': [POOL_64, ARENA_64],
  'x86_64-apple-darwin': [POOL_64, ARENA_64],
  'aarch64-apple-darwin': [POOL_64, ARENA_64],
  wasm64: [POOL_64, ARENA_64],
};

describe('CPython structs on every target', () => {
  it('covers every modelled target', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([...TARGET_NAMES].sort());
  });
  for (const name of TARGET_NAMES) {
    it(`pool_header on ${name}`, () => {
      expect(offsets(getTarget(name), 'pool_header')).toEqual(EXPECTED[name]![0]);
    });
    it(`arena_object on ${name}`, () => {
      expect(offsets(getTarget(name), 'arena_object')).toEqual(EXPECTED[name]![1]);
    });
  }
});
