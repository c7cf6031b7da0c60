/** codegen/SCHEMA.md's table of errors is what the compiler says: every row is run as documented. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeLayout, getTarget, LayoutError, parseJsonDescription } from '../../codegen';

const schema = readFileSync(join(__dirname, '..', '..', 'codegen', 'SCHEMA.md'), 'utf8');
const section = schema.slice(schema.indexOf('## Errors'));
const rows = section
  .split('\n')
  .filter((l) => l.startsWith('| `['))
  .map((l) => {
    const m = /^\| `(\[.*\])`( \((\S+)\))? +\| `(.*)` +\|$/.exec(l);
    if (!m) throw new Error(`SCHEMA.md: cannot read the row ${l}`);
    return { types: m[1]!, target: m[3] ?? 'x86_64-linux-gnu', message: m[4]! };
  });

describe('SCHEMA.md error examples', () => {
  it('has rows', () => {
    expect(rows.length).toBeGreaterThanOrEqual(8);
  });
  for (const row of rows) {
    it(row.message, () => {
      let got: string | undefined;
      try {
        computeLayout(parseJsonDescription(`{"types":${row.types}}`, 'row.json'), getTarget(row.target));
      } catch (err) {
        if (!(err instanceof LayoutError)) throw err;
        got = err.message;
      }
      expect(got).toBe(row.message);
    });
  }
});
