/**
 * Import from C: the struct, union, enum and typedef definitions of a C header, read through clang's JSON AST
 * (`clang -Xclang -ast-dump=json -fsyntax-only`), become a JSON description (codegen/SCHEMA.md) that the rest
 * of the compiler takes like any other. This module owns running clang and translating its AST; it lays
 * nothing out itself (clang's layout is checked against the model by compiling the generated assertions with
 * the original header, in the tests).
 *
 * What is imported: every record, enum and typedef defined in the header itself (not in the files it
 * includes), and whatever those refer to from elsewhere. C types map as follows: the builtin integer and
 * floating types and `<stdint.h>`/`<stddef.h>` typedefs (`uint32_t`, `size_t`, ...) become scalars; other
 * typedefs stay typedefs; `typedef struct { ... } name;` (an untagged record named by a typedef) becomes
 * `struct name`, and likewise for enums; a record declared but never defined becomes an opaque type; nested
 * untagged records stay inline, anonymous ones stay anonymous members; bitfields (named and unnamed, zero-width
 * too), flexible array members, function pointers, `const`/`volatile`, `long double`, `__int128` and
 * `wchar_t` carry over, as do `packed`, `aligned(n)`, `_Alignas` and `#pragma pack(n)`. What the description
 * language cannot say is an error naming the header's declaration and field (e.g. a pointer to an array).
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { LayoutError } from './errors';

/** A JSON description (codegen/SCHEMA.md). */
export interface JsonDescription {
  description: string;
  types: JsonDecl[];
}
type JsonType = string | { [k: string]: unknown };
type JsonDecl = { kind: string; name: string; [k: string]: unknown };
type JsonField = { [k: string]: unknown };

interface AstNode {
  id?: string;
  kind?: string;
  name?: string;
  tagUsed?: string;
  completeDefinition?: boolean;
  isImplicit?: boolean;
  isBitfield?: boolean;
  type?: { qualType?: string; desugaredQualType?: string };
  value?: string;
  loc?: AstLoc;
  range?: { begin?: AstLoc; end?: AstLoc };
  inner?: AstNode[];
  ownedTagDecl?: { id?: string };
  decl?: { id?: string };
}
interface AstLoc {
  file?: string;
  spellingLoc?: AstLoc;
  expansionLoc?: AstLoc;
}

export interface ImportOptions {
  /** The triple clang parses for (`--target=`); the host's when absent. */
  readonly triple?: string;
  /** Extra clang arguments (include directories, defines). */
  readonly clangArgs?: readonly string[];
  /** The clang executable; `PYMALLOC_CLANG` or `clang` on PATH when absent. */
  readonly clang?: string;
}

/** Runs clang on `inputs` (a file, or '-' with `stdin`) and returns its JSON AST; `header` names errors. */
function runClang(inputs: string[], options: ImportOptions, header: string, stdin?: string): AstNode {
  const clang = options.clang ?? process.env['PYMALLOC_CLANG'] ?? 'clang';
  const args = [
    ...(options.triple ? [`--target=${options.triple}`, '-ffreestanding'] : []),
    '-x',
    'c',
    '-std=gnu11',
    '-fsyntax-only',
    '-Xclang',
    '-ast-dump=json',
    ...(options.clangArgs ?? []),
    ...inputs,
  ];
  const r = spawnSync(clang, args, { encoding: 'utf8', maxBuffer: 1 << 30, input: stdin });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new LayoutError(
      header,
      code === 'ENOENT'
        ? `--from-c needs clang, and '${clang}' was not found (install clang, or name it in PYMALLOC_CLANG)`
        : `could not run ${clang}: ${r.error.message}`,
    );
  }
  if (r.status !== 0) {
    const first = (r.stderr ?? '').split('\n').find((l) => /error/.test(l)) ?? `exit status ${r.status}`;
    throw new LayoutError(header, `clang could not parse it: ${first.trim()}`);
  }
  return JSON.parse(r.stdout) as AstNode;
}

/** Runs clang on `header` and returns its JSON AST. */
export function clangAst(header: string, options: ImportOptions = {}): AstNode {
  return runClang([header], options, header);
}

/** Scalars by C spelling (clang prints builtin types in these forms). */
const BUILTINS: Readonly<Record<string, string>> = {
  char: 'char',
  'signed char': 'schar',
  'unsigned char': 'uchar',
  short: 'short',
  'unsigned short': 'ushort',
  int: 'int',
  'unsigned int': 'uint',
  long: 'long',
  'unsigned long': 'ulong',
  'long long': 'longlong',
  'unsigned long long': 'ulonglong',
  float: 'float32',
  double: 'float64',
  'long double': 'longdouble',
  __int128: 'int128',
  'unsigned __int128': 'uint128',
  _Bool: 'bool',
  bool: 'bool',
};

/** Typedefs of <stdint.h> and <stddef.h> that are scalars of the description language. */
const SCALAR_TYPEDEFS: Readonly<Record<string, string>> = {
  int8_t: 'int8',
  int16_t: 'int16',
  int32_t: 'int32',
  int64_t: 'int64',
  uint8_t: 'uint8',
  uint16_t: 'uint16',
  uint32_t: 'uint32',
  uint64_t: 'uint64',
  size_t: 'size_t',
  ssize_t: 'ssize_t',
  intptr_t: 'intptr_t',
  uintptr_t: 'uintptr_t',
  ptrdiff_t: 'ptrdiff_t',
  wchar_t: 'wchar',
  __int128_t: 'int128',
  __uint128_t: 'uint128',
};

const QUALIFIERS = new Set(['const', 'volatile', 'restrict', '__restrict', '_Atomic']);
/** The qualifiers a description keeps (the others do not change a layout). */
type Quals = { const?: boolean; volatile?: boolean };

/** Tokens of a clang type spelling; `(unnamed struct at f.h:3:5)` and `(anonymous ...)` are one token each. */
function tokenize(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' && /^\((unnamed|anonymous)\b/.test(text.slice(i))) {
      let depth = 0;
      let j = i;
      for (; j < text.length; j++) {
        if (text[j] === '(') depth++;
        else if (text[j] === ')' && --depth === 0) break;
      }
      out.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      // `outer::(anonymous at ...)`: clang qualifies nested untagged records with their parent.
      while (j < text.length && /[A-Za-z0-9_:]/.test(text[j]!)) j++;
      const word = text.slice(i, j);
      if (word.endsWith('::')) {
        i = j;
        continue;
      }
      out.push(word);
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i;
      while (j < text.length && /[0-9a-fA-FxXuUlL]/.test(text[j]!)) j++;
      out.push(text.slice(i, j));
      i = j;
    } else {
      out.push(c);
      i++;
    }
  }
  return out;
}

/** A parsed C type, before it is turned into the description's JSON. */
type CType = (
  | { k: 'base'; words: string[] }
  | { k: 'tag'; tag: 'struct' | 'union' | 'enum'; name: string }
  | { k: 'unnamed'; tag: 'struct' | 'union' | 'enum' }
  | { k: 'pointer'; to: CType }
  | { k: 'array'; of: CType; length: number | undefined }
  | { k: 'function'; returns: CType; params: CType[]; variadic: boolean }
) & { quals?: Quals };

function addQual(q: Quals | undefined, word: string): Quals | undefined {
  if (word === 'const') return { ...q, const: true };
  if (word === 'volatile') return { ...q, volatile: true };
  return q;
}

class TypeParser {
  private pos = 0;
  // Plain fields, not parameter properties: descriptions that import pymalloc/codegen are loaded by type
  // stripping, which cannot rewrite those.
  private readonly tokens: string[];
  private readonly where: string;
  constructor(tokens: string[], where: string) {
    this.tokens = tokens;
    this.where = where;
  }

  private fail(problem: string): never {
    throw new LayoutError(this.where, `cannot read the C type '${this.tokens.join(' ')}': ${problem}`);
  }

  private peek(): string | undefined {
    return this.tokens[this.pos];
  }

  private next(): string {
    const t = this.tokens[this.pos++];
    if (t === undefined) this.fail('it ends early');
    return t;
  }

  /** A whole type (a base type and an abstract declarator). */
  parseType(): CType {
    const base = this.parseBase();
    const t = this.parseDeclarator(base);
    return t;
  }

  done(): void {
    if (this.pos !== this.tokens.length) this.fail(`unexpected '${this.peek()}'`);
  }

  private parseBase(): CType {
    const words: string[] = [];
    let quals: Quals | undefined;
    for (;;) {
      const t = this.peek();
      if (t === undefined) break;
      if (QUALIFIERS.has(t)) {
        quals = addQual(quals, t);
        this.pos++;
        continue;
      }
      if (t === 'struct' || t === 'union' || t === 'enum') {
        this.pos++;
        const name = this.next();
        const base: CType = /^\((unnamed|anonymous)/.test(name)
          ? { k: 'unnamed', tag: t }
          : { k: 'tag', tag: t, name };
        quals = this.qualifiers(quals);
        return quals ? { ...base, quals } : base;
      }
      if (/^[A-Za-z_]/.test(t)) {
        words.push(t);
        this.pos++;
        continue;
      }
      break;
    }
    if (words.length === 0) this.fail('no base type');
    return quals ? { k: 'base', words, quals } : { k: 'base', words };
  }

  private qualifiers(q: Quals | undefined): Quals | undefined {
    let quals = q;
    while (this.peek() !== undefined && QUALIFIERS.has(this.peek()!)) quals = addQual(quals, this.next());
    return quals;
  }

  /** `* const *`, then `( declarator )` or nothing, then `[n]` and `(params)` suffixes. */
  private parseDeclarator(base: CType): CType {
    let t = base;
    while (this.peek() === '*') {
      this.pos++;
      const quals = this.qualifiers(undefined);
      t = quals ? { k: 'pointer', to: t, quals } : { k: 'pointer', to: t };
    }
    if (this.peek() === '(' && (this.tokens[this.pos + 1] === '*' || this.tokens[this.pos + 1] === '(')) {
      // A nested declarator binds after the suffixes that follow its parentheses.
      this.pos++;
      const start = this.pos;
      let depth = 1;
      while (depth > 0) {
        const tok = this.next();
        if (tok === '(') depth++;
        else if (tok === ')') depth--;
      }
      const innerTokens = this.tokens.slice(start, this.pos - 1);
      const outer = this.parseSuffixes(t);
      const inner = new TypeParser(innerTokens, this.where);
      const result = inner.parseDeclarator(outer);
      inner.done();
      return result;
    }
    return this.parseSuffixes(t);
  }

  private parseSuffixes(base: CType): CType {
    const suffixes: (
      | { k: 'array'; length: number | undefined }
      | { k: 'function'; params: CType[]; variadic: boolean }
    )[] = [];
    for (;;) {
      const t = this.peek();
      if (t === '[') {
        this.pos++;
        const n = this.peek() === ']' ? undefined : Number.parseInt(this.next(), 10);
        if (this.next() !== ']') this.fail("expected ']'");
        suffixes.push({ k: 'array', length: n });
      } else if (t === '(') {
        this.pos++;
        const params: CType[] = [];
        let start = this.pos;
        let depth = 0;
        const groups: string[][] = [];
        for (;;) {
          const tok = this.next();
          if (tok === '(' || tok === '[') depth++;
          else if ((tok === ')' || tok === ']') && depth > 0) depth--;
          else if (tok === ')' && depth === 0) {
            groups.push(this.tokens.slice(start, this.pos - 1));
            break;
          } else if (tok === ',' && depth === 0) {
            groups.push(this.tokens.slice(start, this.pos - 1));
            start = this.pos;
          }
        }
        let variadic = false;
        for (const g of groups) {
          if (g.length === 0 || (g.length === 1 && g[0] === 'void')) continue;
          if (g.every((x) => x === '.')) {
            variadic = true;
            continue;
          }
          const p = new TypeParser(g, this.where);
          params.push(p.parseType());
          p.done();
        }
        suffixes.push({ k: 'function', params, variadic });
      } else break;
    }
    let t = base;
    for (let i = suffixes.length - 1; i >= 0; i--) {
      const s = suffixes[i]!;
      t =
        s.k === 'array'
          ? { k: 'array', of: t, length: s.length }
          : { k: 'function', returns: t, params: s.params, variadic: s.variadic };
    }
    return t;
  }
}

/** Parses a clang type spelling (`struct outer *`, `uint32_t[4]`, `int (*)(int, char *)`). */
export function parseCType(text: string, where: string): CType {
  const p = new TypeParser(tokenize(text), where);
  const t = p.parseType();
  p.done();
  return t;
}

/** Integer attributes (`aligned(16)`): the value clang evaluated. */
function attrValue(node: AstNode): number | undefined {
  const stack = [...(node.inner ?? [])];
  while (stack.length > 0) {
    const n = stack.shift()!;
    if (n.value !== undefined && /^-?\d+$/.test(n.value)) return Number(n.value);
    stack.push(...(n.inner ?? []));
  }
  return undefined;
}

/** The C spellings of the records a `#pragma pack` applies to (its value is not in the JSON AST). */
function pragmaPackedRecords(ast: AstNode): string[] {
  const out: string[] = [];
  const top = ast.inner ?? [];
  const typedefOf = new Map<string, string>();
  for (const n of top) {
    const owned = n.kind === 'TypedefDecl' ? n.inner?.[0]?.ownedTagDecl?.id : undefined;
    if (owned && n.name) typedefOf.set(owned, n.name);
  }
  for (const n of top) {
    if (n.kind !== 'RecordDecl' || !n.completeDefinition) continue;
    if (!(n.inner ?? []).some((c) => c.kind === 'MaxFieldAlignmentAttr')) continue;
    if (n.name) out.push(`${n.tagUsed} ${n.name}`);
    else if (typedefOf.has(n.id!)) out.push(typedefOf.get(n.id!)!);
  }
  return out;
}

/** `_Alignof` of each spelling, as clang computes it with the header included (read back from an enum). */
function probeAlignments(
  header: string,
  spellings: readonly string[],
  options: ImportOptions,
): Map<string, number> {
  const probe = [
    `#include ${JSON.stringify(resolve(header))}`,
    `enum pym_layout_probe { ${spellings.map((sp, i) => `pym_layout_probe_${i} = _Alignof(${sp})`).join(', ')} };`,
  ].join('\n');
  const ast = runClang(['-'], options, header, probe);
  const out = new Map<string, number>();
  const probeEnum = (ast.inner ?? []).find((n) => n.kind === 'EnumDecl' && n.name === 'pym_layout_probe');
  for (const c of probeEnum?.inner ?? []) {
    const i = Number(c.name?.replace('pym_layout_probe_', ''));
    const v = attrValue(c);
    if (v !== undefined && spellings[i] !== undefined) out.set(spellings[i]!, v);
  }
  return out;
}

/** Translates clang's AST of `header` into a JSON description; `packAlign` gives `#pragma pack`ed records' alignments. */
export function descriptionFromAst(
  ast: AstNode,
  header: string,
  packAlign: ReadonlyMap<string, number> = new Map(),
): JsonDescription {
  const top = ast.inner ?? [];
  // clang writes a location's file only where it changes, in document order: replay that order.
  let currentFile: string | undefined;
  const track = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) track(x);
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if (typeof o['file'] === 'string' && 'offset' in o) currentFile = o['file'];
    for (const [k, x] of Object.entries(o)) if (k !== 'file' && typeof x === 'object') track(x);
  };
  // clang names the main file as it was given on its command line.
  const mainFile = header;
  const inMain = new Set<AstNode>();
  for (const n of top) {
    const before = currentFile;
    track(n.loc);
    const here = n.loc?.expansionLoc?.file ?? n.loc?.file ?? currentFile ?? before;
    if (here === mainFile) inMain.add(n);
    track(n.range);
    track(n.inner);
  }

  const byId = new Map<string, AstNode>();
  const recordsByName = new Map<string, AstNode[]>();
  const enumsByName = new Map<string, AstNode>();
  const typedefsByName = new Map<string, AstNode>();
  const index = (n: AstNode): void => {
    if (n.id) byId.set(n.id, n);
    if (n.kind === 'RecordDecl' && n.name) {
      const key = `${n.tagUsed} ${n.name}`;
      recordsByName.set(key, [...(recordsByName.get(key) ?? []), n]);
    }
    if (n.kind === 'EnumDecl' && n.name) enumsByName.set(n.name, n);
    if (n.kind === 'TypedefDecl' && n.name) typedefsByName.set(n.name, n);
    if (n.kind === 'RecordDecl') for (const c of n.inner ?? []) if (c.kind === 'RecordDecl') index(c);
  };
  for (const n of top) index(n);

  // Untagged records and enums named by a typedef take its name (`typedef struct { } pt;` → struct pt).
  const typedefName = new Map<string, string>();
  for (const n of top) {
    if (n.kind !== 'TypedefDecl') continue;
    const owned = n.inner?.[0]?.ownedTagDecl?.id;
    const decl = owned ? byId.get(owned) : undefined;
    if (decl && !decl.name && n.name) typedefName.set(decl.id!, n.name);
  }

  const out: JsonDecl[] = [];
  const emitted = new Set<string>();
  const emit = (key: string, make: () => JsonDecl | undefined): void => {
    if (emitted.has(key)) return;
    emitted.add(key);
    const d = make();
    if (d) out.push(d);
  };

  const convert = (t: CType, where: string, unnamed: () => JsonType, flexibleOk = false): JsonType => {
    const plain = convertUnqualified(t, where, unnamed, flexibleOk);
    if (!t.quals || t.k === 'unnamed' || t.k === 'array') return plain;
    let out: JsonType = plain;
    if (t.quals.volatile) out = { kind: 'volatile', of: out };
    if (t.quals.const) out = { kind: 'const', of: out };
    return out;
  };

  const noUnnamed = (where: string) => (): JsonType => {
    throw new LayoutError(where, 'an untagged struct or union cannot be used here; give it a tag');
  };

  const isVoid = (t: CType): boolean => t.k === 'base' && t.words.join(' ') === 'void';

  const convertFunction = (f: CType & { k: 'function' }, where: string): JsonType => ({
    kind: 'function',
    returns: isVoid(f.returns) ? 'void' : convert(f.returns, `${where}.returns`, noUnnamed(where)),
    params: f.params.map((p, i) =>
      p.k === 'pointer' && p.to.k === 'function'
        ? convertFunction(p.to, `${where}.params[${i}]`)
        : convert(p, `${where}.params[${i}]`, noUnnamed(where)),
    ),
    ...(f.variadic ? { variadic: true } : {}),
  });

  const convertUnqualified = (
    t: CType,
    where: string,
    unnamed: () => JsonType,
    flexibleOk: boolean,
  ): JsonType => {
    switch (t.k) {
      case 'base': {
        // clang spells builtin types canonically (`unsigned int`, `long`, `unsigned long long`, `_Bool`).
        const spelled = t.words.join(' ');
        const builtin = BUILTINS[spelled];
        if (builtin) return builtin;
        if (t.words.length === 1) {
          const name = t.words[0]!;
          if (SCALAR_TYPEDEFS[name]) return SCALAR_TYPEDEFS[name]!;
          const td = typedefsByName.get(name);
          if (td) {
            importTypedef(td);
            return typedefAlias.get(name) ?? name;
          }
        }
        throw new LayoutError(where, `the C type '${t.words.join(' ')}' has no equivalent in a description`);
      }
      case 'tag': {
        if (t.tag === 'enum') {
          const e = enumsByName.get(t.name);
          if (!e) throw new LayoutError(where, `enum ${t.name} is not defined`);
          importEnum(e, t.name);
          return t.name;
        }
        importRecordByName(t.tag, t.name);
        return t.name;
      }
      case 'unnamed':
        return unnamed();
      case 'pointer': {
        if (t.to.k === 'base' && t.to.words.length === 1 && t.to.words[0] === 'void')
          return { kind: 'pointer', to: 'void' };
        if (t.to.k === 'array')
          throw new LayoutError(where, 'a pointer to an array cannot be described; point to a typedef of it');
        if (t.to.k === 'function') return { kind: 'pointer', to: convertFunction(t.to, where) };
        if (t.to.k === 'unnamed')
          throw new LayoutError(
            where,
            'a pointer to an untagged struct or union cannot be described; give it a tag',
          );
        return { kind: 'pointer', to: convert(t.to, where, unnamed) };
      }
      case 'array': {
        if (t.length === undefined) {
          if (!flexibleOk)
            throw new LayoutError(
              where,
              'an array of unknown length is only valid as the last member of a struct',
            );
          return { kind: 'array', of: convert(t.of, where, unnamed), flexible: true };
        }
        const lengths: number[] = [];
        let cur: CType = t;
        while (cur.k === 'array') {
          if (cur.length === undefined) throw new LayoutError(where, 'an array of unknown length');
          lengths.push(cur.length);
          cur = cur.of;
        }
        return {
          kind: 'array',
          of: convert(cur, where, unnamed),
          length: lengths.length === 1 ? lengths[0]! : lengths,
        };
      }
      case 'function':
        throw new LayoutError(where, 'a function type is only valid behind a pointer');
    }
  };

  const typedefAlias = new Map<string, string>();

  let pragmaAlign: number | undefined;
  const recordAttrs = (
    n: AstNode,
    where: string,
    spelling: string | undefined,
  ): { packed?: boolean; pack?: number; align?: number } => {
    const attrs: { packed?: boolean; pack?: number; align?: number } = {};
    for (const c of n.inner ?? []) {
      if (c.kind === 'PackedAttr') attrs.packed = true;
      else if (c.kind === 'MaxFieldAlignmentAttr') {
        // #pragma pack(n): the AST does not hold n, but a record under pack(1) has alignment 1.
        // pack(n) caps every member's alignment at n, so the record's alignment is at most n; where it is
        // less, no member reaches n, and pack(that alignment) lays the record out the same.
        const align = (spelling !== undefined ? packAlign.get(spelling) : undefined) ?? pragmaAlign;
        if (align === undefined)
          throw new LayoutError(where, 'the #pragma pack of this record could not be determined');
        if (align === 1) attrs.packed = true;
        else attrs.pack = align;
      } else if (c.kind === 'AlignedAttr') {
        const v = attrValue(c);
        if (v !== undefined) attrs.align = Math.max(attrs.align ?? 1, v);
      }
    }
    return attrs;
  };

  const recordBody = (
    n: AstNode,
    where: string,
    spelling?: string,
  ): { fields: JsonField[]; packed?: boolean; align?: number } => {
    const attrs = recordAttrs(n, where, spelling);
    // Records defined inside a #pragma pack region share it (nested untagged ones have no name to probe).
    const outerPragma = pragmaAlign;
    if (spelling !== undefined && packAlign.has(spelling)) pragmaAlign = packAlign.get(spelling);
    const fields: JsonField[] = [];
    let lastUnnamed: AstNode | undefined;
    let anon = 0;
    for (const c of n.inner ?? []) {
      if (c.kind === 'RecordDecl') {
        if (!c.name) lastUnnamed = c;
        else if (c.completeDefinition) importRecord(c, `${c.tagUsed} ${c.name}`);
        continue;
      }
      if (c.kind === 'EnumDecl') {
        if (c.name) importEnum(c, c.name);
        continue;
      }
      if (c.kind !== 'FieldDecl') continue;
      const fname = c.name ?? '';
      const fwhere = `${where}.${fname || `(unnamed ${anon})`}`;
      const spelled = c.type?.qualType ?? '';
      if (c.isBitfield) {
        const width = attrValue(c);
        if (width === undefined)
          throw new LayoutError(fwhere, 'the width of this bitfield is not in the AST');
        const type = convert(parseCType(spelled, fwhere), fwhere, noUnnamed(fwhere));
        fields.push(c.name ? { name: c.name, type, bits: width } : { type, bits: width });
        if (!c.name) anon++;
        continue;
      }
      const unnamed = (): JsonType => {
        if (!lastUnnamed) throw new LayoutError(fwhere, `no definition found for '${spelled}'`);
        const inner = lastUnnamed;
        if (inner.kind === 'EnumDecl')
          throw new LayoutError(fwhere, 'an untagged enum member type cannot be described; name the enum');
        return { kind: inner.tagUsed, ...recordBody(inner, fwhere) };
      };
      if (!c.name) {
        if (!lastUnnamed) throw new LayoutError(fwhere, 'an unnamed member with no record');
        const body = recordBody(lastUnnamed, fwhere);
        fields.push({ anonymous: { kind: lastUnnamed.tagUsed, ...body }, name: `anonymous${anon++}` });
        continue;
      }
      const isLast = (n.inner ?? []).filter((x) => x.kind === 'FieldDecl').at(-1) === c;
      const type = convert(parseCType(spelled, fwhere), fwhere, unnamed, isLast && n.tagUsed === 'struct');
      const field: JsonField = { name: c.name, type };
      for (const a of c.inner ?? []) {
        if (a.kind === 'AlignedAttr') {
          const v = attrValue(a);
          if (v !== undefined) field['align'] = Math.max((field['align'] as number | undefined) ?? 1, v);
        }
      }
      fields.push(field);
    }
    pragmaAlign = outerPragma;
    return { fields, ...attrs };
  };

  const importRecord = (n: AstNode, key: string): void => {
    const name = n.name ?? typedefName.get(n.id!);
    if (!name) return;
    const spelling = n.name ? `${n.tagUsed} ${n.name}` : name;
    emit(key, () => ({ kind: n.tagUsed!, name, ...recordBody(n, name, spelling) }));
  };

  const importRecordByName = (tag: string, name: string): void => {
    const key = `${tag} ${name}`;
    if (emitted.has(key)) return;
    const defs = recordsByName.get(key) ?? [];
    const def = defs.find((d) => d.completeDefinition);
    if (def) importRecord(def, key);
    else {
      // Named by a typedef of an untagged record (`pt` from `typedef struct { } pt;`)?
      for (const [id, alias] of typedefName) {
        const d = byId.get(id);
        if (alias === name && d?.tagUsed === tag) {
          importRecord(d, key);
          return;
        }
      }
      emit(key, () => ({ kind: 'opaque', name, tag }));
    }
  };

  const importEnum = (n: AstNode, name: string): void => {
    emit(`enum ${name}`, () => {
      const members: Record<string, number> = {};
      let next = 0n;
      for (const c of n.inner ?? []) {
        if (c.kind !== 'EnumConstantDecl' || !c.name) continue;
        const v = c.inner?.length ? attrValue(c) : undefined;
        const value = v !== undefined ? BigInt(v) : next;
        members[c.name] = Number(value);
        next = value + 1n;
      }
      const values = Object.values(members);
      const min = Math.min(...values);
      const max = Math.max(...values);
      // C gives an enum a type compatible with int, or unsigned int when no value is negative (gcc, clang).
      const underlying =
        min < 0
          ? min >= -(2 ** 31) && max < 2 ** 31
            ? 'int'
            : 'longlong'
          : max < 2 ** 32
            ? 'uint'
            : 'ulonglong';
      return { kind: 'enum', name, underlying, members };
    });
  };

  const importTypedef = (n: AstNode): void => {
    const name = n.name!;
    if (emitted.has(`typedef ${name}`)) return;
    const owned = n.inner?.[0]?.ownedTagDecl?.id;
    const ownedDecl = owned ? byId.get(owned) : undefined;
    if (ownedDecl && !ownedDecl.name) {
      // The untagged record or enum becomes `struct name` / `enum name`; the typedef itself is dropped.
      emitted.add(`typedef ${name}`);
      if (ownedDecl.kind === 'EnumDecl') importEnum(ownedDecl, name);
      else importRecord(ownedDecl, `${ownedDecl.tagUsed} ${name}`);
      return;
    }
    emit(`typedef ${name}`, () => {
      const spelled = n.type?.qualType ?? '';
      const type = convert(parseCType(spelled, name), name, () => {
        throw new LayoutError(name, `no definition found for '${spelled}'`);
      });
      return { kind: 'typedef', name, type };
    });
  };

  for (const n of top) {
    if (!inMain.has(n) || n.isImplicit) continue;
    if (n.kind === 'RecordDecl') {
      if (n.name && n.completeDefinition) importRecord(n, `${n.tagUsed} ${n.name}`);
      else if (n.name) importRecordByName(n.tagUsed!, n.name);
    } else if (n.kind === 'EnumDecl' && n.name) importEnum(n, n.name);
    else if (n.kind === 'TypedefDecl' && n.name && !SCALAR_TYPEDEFS[n.name]) importTypedef(n);
  }
  return { description: `Imported from ${header} by pymalloc layout --from-c`, types: out };
}

/** Reads `header` through clang and returns its description (JSON, as codegen/SCHEMA.md defines it). */
export function importCHeader(header: string, options: ImportOptions = {}): JsonDescription {
  const ast = clangAst(header, options);
  const packed = pragmaPackedRecords(ast);
  const aligns = packed.length > 0 ? probeAlignments(header, packed, options) : new Map<string, number>();
  return descriptionFromAst(ast, header, aligns);
}
