/**
 * Layout report in the style of pahole (dwarves): every member with its offset and size, holes between
 * members, cacheline boundaries, tail padding, and a summary per record. For reading, not for parsing.
 */
import { cScalarName } from './emit-c';
import type { Layout, MemberLayout, RecordLayout } from './layout';
import type { FunctionType, Type, VoidType } from './types';

const CACHELINE = 64;
const TYPE_COLUMN = 26;
const NAME_COLUMN = 21;

/** [type part, declarator suffix] of a declaration, split around the member name. */
function typeParts(type: Type | VoidType | FunctionType): [string, string] {
  switch (type.kind) {
    case 'void':
      return ['void', ''];
    case 'scalar':
      return [cScalarName(type.name), ''];
    case 'enum':
      return [`enum ${type.name}`, ''];
    case 'typedef':
      return [type.name, ''];
    case 'opaque':
      return [`${type.tag} ${type.name}`, ''];
    case 'struct':
    case 'union':
      return [type.name === undefined ? type.kind : `${type.kind} ${type.name}`, ''];
    case 'qualified': {
      const [t, s] = typeParts(type.type);
      const q = `${type.const ? 'const ' : ''}${type.volatile ? 'volatile ' : ''}`;
      return type.type.kind === 'pointer' ? [`${t} ${q.trim()}`, s] : [`${q}${t}`, s];
    }
    case 'function': {
      const [t] = typeParts(type.returns);
      const params = type.params.map((p) => typeParts(p).join('')).join(', ') || 'void';
      return [t, `)(${params}${type.variadic ? ', ...' : ''})`];
    }
    case 'pointer': {
      if (type.to.kind === 'function') {
        const [t, s] = typeParts(type.to);
        return [`${t} (*`, s];
      }
      const [t, s] = typeParts(type.to);
      return [t.endsWith('*') ? `${t}*` : `${t} *`, s];
    }
    case 'array': {
      const [t, s] = typeParts(type.element);
      return [t, `${type.flexible ? '[]' : ''}${type.dims.map((d) => `[${d}]`).join('')}${s}`];
    }
  }
}

function at(offset: number, size: number): string {
  return `/* ${String(offset).padStart(5)} ${String(size).padStart(5)} */`;
}

function line(indent: number, text: string, offset: number, size: number): string {
  const tabs = '\t'.repeat(indent);
  // pahole aligns the comment at a fixed column counted with 8-column tabs.
  const width = indent * 8 + text.length;
  const pad = Math.max(1, 56 - width);
  return `${tabs}${text}${' '.repeat(pad)}${at(offset, size)}`;
}

function memberText(m: MemberLayout): string {
  if (m.kind === 'pad') return `${'uint8_t'.padEnd(TYPE_COLUMN)} ${m.name}[${m.size}];`;
  const [t, s] = typeParts(m.type!);
  const align = m.fieldAlign !== undefined ? ` __attribute__((__aligned__(${m.fieldAlign})))` : '';
  if (m.bitfield) {
    const name = m.bitfield.unnamed ? '' : m.name;
    return `${t.padEnd(TYPE_COLUMN)} ${`${name}:${m.bitfield.width}`.padEnd(NAME_COLUMN)};`.replace(
      / +;$/,
      ';',
    );
  }
  return `${t.padEnd(TYPE_COLUMN)} ${`${m.name}${s}`.padEnd(NAME_COLUMN)}${align};`.replace(/ +;$/, ';');
}

interface Totals {
  members: number;
  sumMembers: number;
  holes: number;
  sumHoles: number;
}

function body(rl: RecordLayout, base: number, indent: number, out: string[]): Totals {
  const totals: Totals = { members: 0, sumMembers: 0, holes: 0, sumHoles: 0 };
  let end = 0;
  let nextBoundary = Math.floor(base / CACHELINE) * CACHELINE + CACHELINE;
  for (const m of rl.members) {
    const abs = base + m.offset;
    if (rl.record.kind === 'struct' && m.offset > end) {
      const hole = m.offset - end;
      out.push(`${'\t'.repeat(indent)}/* XXX ${hole} byte${hole === 1 ? '' : 's'} hole, try to pack */`);
      totals.holes++;
      totals.sumHoles += hole;
    }
    while (abs >= nextBoundary) {
      out.push(
        `${'\t'.repeat(indent)}/* --- cacheline ${nextBoundary / CACHELINE} boundary (${nextBoundary} bytes) --- */`,
      );
      nextBoundary += CACHELINE;
    }
    const inline =
      m.kind === 'anonymous' ||
      (m.record !== undefined && m.record.record.name === undefined && m.type !== undefined);
    if (inline) {
      const [, s] = m.type ? typeParts(m.type) : ['', ''];
      out.push(`${'\t'.repeat(indent)}${m.record!.record.kind} {`);
      body(m.record!, abs, indent + 1, out);
      const name = m.kind === 'anonymous' ? '' : ` ${m.name}${s}`;
      out.push(line(indent, `}${name};`, abs, m.size));
    } else {
      out.push(line(indent, memberText(m), abs, m.size));
    }
    totals.members++;
    totals.sumMembers += m.size;
    end = rl.record.kind === 'struct' ? m.offset + m.size : Math.max(end, m.size);
    nextBoundary = Math.max(nextBoundary, Math.floor((abs + m.size - 1) / CACHELINE) * CACHELINE + CACHELINE);
  }
  return totals;
}

/** The report of every named record of `layout`. */
export function emitReport(layout: Layout): string {
  const out: string[] = [`/* target: ${layout.target.name} */`];
  for (const [rec, rl] of layout.records) {
    const attrs = `${rec.packed ? ' __attribute__((__packed__))' : ''}${rec.align !== undefined ? ` __attribute__((__aligned__(${rec.align})))` : ''}`;
    out.push('', `${rec.kind} ${rec.name} {`);
    const totals = body(rl, 0, 1, out);
    const lastEnd =
      rec.kind === 'struct'
        ? Math.max(0, ...rl.members.map((m) => m.offset + m.size))
        : Math.max(0, ...rl.members.map((m) => m.size));
    const padding = rl.size - lastEnd;
    const cachelines = Math.ceil(rl.size / CACHELINE);
    out.push('');
    out.push(`\t/* size: ${rl.size}, cachelines: ${cachelines}, members: ${totals.members} */`);
    out.push(
      `\t/* sum members: ${totals.sumMembers}, holes: ${totals.holes}, sum holes: ${totals.sumHoles} */`,
    );
    if (padding > 0) out.push(`\t/* padding: ${padding} */`);
    const last = rl.size % CACHELINE;
    if (last !== 0) out.push(`\t/* last cacheline: ${last} bytes */`);
    out.push(`}${attrs}; /* align: ${rl.align} */`);
  }
  out.push('');
  return out.join('\n');
}
