import { pageSize, resolveGeometry } from '../../lib';
import { SIZEOF_ARENA_OBJECT } from '../../lib/generated/layout';
import { blocksPerPool, metadataLayout } from '../../lib/geometry';

const page = pageSize();

describe('geometry', () => {
  test('cpython-3.11 is the default: alignment 16, 32 classes, 16 KiB pools, 1 MiB arenas', () => {
    const g = resolveGeometry({}, page);
    expect(g).toMatchObject({
      preset: 'cpython-3.11',
      alignment: 16,
      alignmentShift: 4,
      threshold: 512,
      nbClasses: 32,
      poolSize: 16384,
      arenaSize: 1 << 20,
      poolsPerArena: 64,
      poolOverhead: 48,
      reserve: 2 ** 32,
    });
    // CPython's NUMBLOCKS: 1021 blocks of 16 bytes fill one 16 KiB pool after its 48-byte header.
    expect(blocksPerPool(g, 0)).toBe(1021);
    expect(blocksPerPool(g, 31)).toBe(31);
  });

  test('cpython-3.6: alignment 8 so 64 classes, 4 KiB pools, 256 KiB arenas', () => {
    const g = resolveGeometry({ preset: 'cpython-3.6' }, page);
    expect(g).toMatchObject({
      alignment: 8,
      nbClasses: 64,
      poolSize: 4096,
      arenaSize: 256 * 1024,
      poolOverhead: 48,
    });
    expect(blocksPerPool(g, 0)).toBe(506);
  });

  test('os-page: pools of the OS page size', () => {
    const g = resolveGeometry({ preset: 'os-page' }, page);
    expect(g.poolSize).toBe(page);
    expect(g.arenaSize % g.poolSize).toBe(0);
  });

  test('explicit values override a preset and make it custom', () => {
    const g = resolveGeometry({ preset: 'cpython-3.6', arenaSize: 1 << 20 }, page);
    expect(g).toMatchObject({ preset: 'custom', alignment: 8, poolSize: 4096, arenaSize: 1 << 20 });
  });

  test.each([
    [{ alignment: 24 }, /alignment must be a power of two/],
    [{ alignment: 4 }, /alignment must be at least 8/],
    [{ poolSize: 12288 }, /poolSize must be a power of two/],
    [{ arenaSize: 8192 }, /arenaSize \(8192\) must be a multiple of poolSize/],
    [{ threshold: 1024 }, /threshold must be at most 512/],
    [{ threshold: 520 }, /threshold must be at most 512/],
    [{ threshold: 200, alignment: 16 }, /threshold \(200\) must be a multiple of alignment/],
    [{ reserve: 2 ** 33 }, /reserve must be at most 4 GiB/],
    [{ poolSize: 1024 }, /at least the OS page size/],
    [{ preset: 'cpython-2.4' }, /unknown preset/],
    [{ arenaSize: 2 ** 30, poolSize: 4096 }, /pools per arena/],
  ])('rejects %j', (options, message) => {
    expect(() => resolveGeometry(options as never, page)).toThrow(RangeError);
    expect(() => resolveGeometry(options as never, page)).toThrow(message);
  });

  test.each([[{ alignment: 'x' }], [{ poolSize: -4096 }], [{ arenaSize: 1.5 }], [{ reserve: Number.NaN }]])(
    'rejects a non-integer field %j with TypeError',
    (options) => {
      expect(() => resolveGeometry(options as never, page)).toThrow(TypeError);
    },
  );

  test('metadata sits below the first arena-aligned data byte', () => {
    const g = resolveGeometry({}, page);
    const m = metadataLayout(g);
    expect(m.state).toBe(0);
    expect(m.arenamap).toBeGreaterThan(0);
    // The arena map (a slot per arena of the 4 GiB a pointer can name) comes before the arena table.
    expect(m.arenas).toBeGreaterThanOrEqual(m.arenamap + (2 ** 32 / g.arenaSize) * 4);
    expect(m.purgemap).toBeGreaterThanOrEqual(m.arenas + g.arenaSlots * SIZEOF_ARENA_OBJECT);
    expect(m.dataStart % g.arenaSize).toBe(0);
    expect(m.dataStart).toBeGreaterThanOrEqual(m.metaBytes);
  });

  test("the arena map's place depends on nothing the geometry sets: free's fast path folds it in", () => {
    const places = new Set<number>();
    for (const preset of ['cpython-3.11', 'cpython-3.6', 'os-page'] as const) {
      for (const reserve of [16 * 1024 * 1024, 256 * 1024 * 1024, 2 ** 32]) {
        for (const alignment of [8, 16, 32]) {
          places.add(metadataLayout(resolveGeometry({ preset, reserve, alignment }, page)).arenamap);
        }
      }
    }
    expect([...places]).toEqual([metadataLayout(resolveGeometry({}, page)).arenamap]);
  });
});
