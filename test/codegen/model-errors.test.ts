/** Bad uses of bitfields, flexible arrays, function types, pack, targets: a LayoutError naming the path. */
import {
  anonymous,
  array,
  bits,
  computeLayout,
  field,
  flexibleArray,
  fn,
  getTarget,
  LayoutError,
  type NamedType,
  parseJsonDescription,
  ptr,
  struct,
  TARGET_NAMES,
  t,
  typedef,
  union,
  unnamedBits,
} from '../../codegen';

function errorOf(f: () => unknown): LayoutError {
  try {
    f();
  } catch (err) {
    if (err instanceof LayoutError) return err;
    throw err;
  }
  throw new Error('expected a LayoutError');
}
const on = (decls: NamedType[], target = 'x86_64-linux-gnu') =>
  errorOf(() => computeLayout(decls, getTarget(target))).message;
const json = (doc: unknown) => errorOf(() => parseJsonDescription(JSON.stringify(doc))).message;

describe('model errors name their path (and the target when it matters)', () => {
  it('bitfields', () => {
    expect(on([struct('s', { a: bits(t.uint8, 9) })])).toBe(
      's.a: bitfield width 9 exceeds the 8 bits of uint8 on x86_64-linux-gnu',
    );
    expect(on([struct('s', { x: t.int, a: bits(t.long, 40) })], 'x86_64-windows-msvc')).toBe(
      's.a: bitfield width 40 exceeds the 32 bits of long on x86_64-windows-msvc',
    );
    expect(on([struct('s', { a: bits(t.bool, 2) })])).toMatch(/^s\.a: bitfield width 2 exceeds the 1 bits/);
    expect(on([struct('s', { x: t.int, a: bits(t.int, 0) })])).toBe(
      's.a: a zero-width bitfield must be unnamed',
    );
    expect(on([struct('s', { a: bits(t.float32, 3) })])).toBe(
      's.a: a bitfield must have an integer, bool or enum type',
    );
    expect(on([struct('s', { a: bits(t.int, -1) })])).toBe(
      's.a: bitfield width -1 is not a non-negative integer',
    );
    expect(on([struct('s', { a: field(t.int, { bits: 3, align: 8 }) })])).toBe(
      's.a: a bitfield cannot have an "align"',
    );
    expect(on([struct('s', { _z: unnamedBits(t.int, 3) })])).toBe(
      's: struct has no named member on x86_64-linux-gnu',
    );
  });

  it('flexible array members', () => {
    expect(on([struct('s', { d: flexibleArray(t.int), n: t.int })])).toBe(
      's.d: a flexible array member must be the last member of its struct',
    );
    expect(on([union('u', { n: t.int, d: flexibleArray(t.int) })])).toBe(
      'u.d: a flexible array member must be in a struct',
    );
    expect(on([struct('s', { d: flexibleArray(t.int) })])).toBe(
      's.d: a struct with a flexible array member needs another named member',
    );
    expect(on([struct('s', { in: struct({ n: t.int, d: flexibleArray(t.int) }) })])).toBe(
      's.in: a struct ending in a flexible array member cannot be a member or an array element',
    );
    expect(
      on([struct('s', { x: t.int, in: anonymous(struct({ n: t.int, d: flexibleArray(t.int) })) })]),
    ).toBe('s.in.d: a flexible array member must be in a named struct, not an inline one');
    const f = struct('f', { n: t.int, d: flexibleArray(t.uint8) });
    expect(on([struct('s', { inner: f })])).toBe(
      's.inner: a struct ending in a flexible array member cannot be a member or an array element',
    );
    expect(on([struct('s', { many: array(f, 2) })])).toMatch(/^s\.many: a struct ending in a flexible array/);
    expect(on([typedef('td', flexibleArray(t.int))])).toBe(
      'td: a typedef of a flexible array is not supported',
    );
  });

  it('function types', () => {
    expect(
      json({ types: [{ kind: 'struct', name: 's', fields: [{ name: 'f', type: { kind: 'function' } }] }] }),
    ).toBe('s.f.type: a function type is only valid behind a pointer ({ "kind": "pointer", "to": ... })');
    expect(
      json({
        types: [
          {
            kind: 'struct',
            name: 's',
            fields: [{ name: 'f', type: { kind: 'pointer', to: { kind: 'function', variadic: true } } }],
          },
        ],
      }),
    ).toBe('s.f.type.to.variadic: a variadic function needs at least one parameter');
    expect(on([struct('s', { f: ptr(fn(t.int, [array(t.int, 2)])) })])).toBe(
      's.f.params[0]: a parameter cannot be an array (use a pointer)',
    );
  });

  it('targets, packedOn, pack and the scalars a target lacks', () => {
    expect(on([struct('s', { a: t.int128 })], 'i386-linux-gnu')).toBe(
      's.a: int128 does not exist on i386-linux-gnu; limit the member to other targets with "targets"',
    );
    expect(on([struct('s', { a: field(t.int, { targets: ['x86_64-linux'] }) })])).toBe(
      `s.a (targets): unknown target "x86_64-linux" (known: ${TARGET_NAMES.join(', ')})`,
    );
    expect(on([struct('s', { a: t.int }, { packedOn: [] })])).toMatch(
      /^s \(packedOn\): expected a non-empty list/,
    );
    expect(on([struct('s', { a: t.int }, { packed: true, pack: 2 })])).toBe(
      's: a record is either packed or pack(N), not both',
    );
    expect(on([struct('s', { a: t.int }, { pack: 3 })])).toMatch(
      /^s \(pack\): alignment 3 is not a power of two/,
    );
    const linuxOnly = struct('l', { a: t.int }, { targets: ['x86_64-linux-gnu'] });
    expect(on([struct('s', { l: linuxOnly })], 'wasm32')).toBe(
      `s.l: 'l' does not exist on wasm32 (its "targets")`,
    );
    expect(() => computeLayout([struct('s', { l: ptr(linuxOnly) })], getTarget('wasm32'))).not.toThrow();
  });

  it('members sharing a name must not share a target', () => {
    const clash = struct('s', {
      a: field(t.int, { targets: ['wasm32', 'i386-linux-gnu'] }),
      b: t.int,
    });
    expect(() => computeLayout([clash], getTarget('x86_64-linux-gnu'))).not.toThrow();
    const doc = {
      types: [
        {
          kind: 'struct',
          name: 's',
          fields: [
            { name: 'n', type: 'int', targets: ['wasm32', 'i386-linux-gnu'] },
            { name: 'n', type: 'long', targets: ['i386-linux-gnu'] },
            { name: 'm', type: 'int' },
          ],
        },
      ],
    };
    expect(on(parseJsonDescription(JSON.stringify(doc)))).toBe("s.n: duplicate field 'n'");
  });

  it('JSON: bits and flexible are checked where they are written', () => {
    expect(
      json({ types: [{ kind: 'struct', name: 's', fields: [{ name: 'a', type: 'int', bits: 'x' }] }] }),
    ).toBe('s.a.bits: expected a bit width (an integer), got "x"');
    expect(
      json({
        types: [
          {
            kind: 'struct',
            name: 's',
            fields: [{ name: 'a', type: { kind: 'array', of: 'int', flexible: 1 } }],
          },
        ],
      }),
    ).toBe('s.a.type.flexible: expected true (or no "flexible"), got 1');
    expect(json({ types: [{ kind: 'struct', name: 's', targets: 'wasm32', fields: [] }] })).toBe(
      's.targets: expected a non-empty array of target names, got "wasm32"',
    );
  });
});
