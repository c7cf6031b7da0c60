/**
 * lib/report/vega.ts: the chart libraries are optional peers, loaded when a chart is asked for, with an error
 * that says what to install when one is missing. (The packed tarball's consumer install in .ci/run checks the
 * same message for real, with neither library installed.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadVega, VEGA_INSTALL_COMMAND } from '../../lib/report/vega';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

function loadWith(missing: string, code: string): unknown {
  let thrown: unknown;
  jest.isolateModules(() => {
    jest.doMock(missing, () => {
      throw Object.assign(
        new Error(code === 'MODULE_NOT_FOUND' ? `Cannot find module '${missing}'` : 'esm'),
        {
          code,
        },
      );
    });
    const fresh = require('../../lib/report/vega') as typeof import('../../lib/report/vega');
    try {
      fresh.loadVega();
    } catch (err) {
      thrown = err;
    }
  });
  jest.dontMock(missing);
  return thrown;
}

test('both libraries load when installed (they are devDependencies here)', () => {
  const { vega, vegaLite } = loadVega();
  expect(typeof vega.View).toBe('function');
  expect(typeof vegaLite.compile).toBe('function');
  expect(loadVega().vega).toBe(vega);
});

test('they are optional peer dependencies, not dependencies, and the advice installs their ranges', () => {
  for (const name of ['vega', 'vega-lite']) {
    expect(pkg.dependencies[name]).toBeUndefined();
    expect(pkg.peerDependenciesMeta[name]?.optional).toBe(true);
  }
  expect(VEGA_INSTALL_COMMAND).toBe(
    `npm install vega@${pkg.peerDependencies['vega']} vega-lite@${pkg.peerDependencies['vega-lite']}`,
  );
});

test.each(['vega', 'vega-lite'])('a missing %s is an error naming it and the install command', (name) => {
  const err = loadWith(name, 'MODULE_NOT_FOUND') as { code?: string; message?: string };
  expect(err?.code).toBe('ERR_PYMALLOC_CHART_LIBRARY');
  expect(err?.message).toBe(
    `charts need ${name}, an optional peer dependency that is not installed: ${VEGA_INSTALL_COMMAND}`,
  );
});

test('an ES-modules-only major version is refused with the same advice', () => {
  const err = loadWith('vega', 'ERR_REQUIRE_ESM') as { code?: string; message?: string };
  expect(err?.code).toBe('ERR_PYMALLOC_CHART_LIBRARY');
  expect(err?.message).toMatch(/vega is ES modules only .*charts need 5\.x: npm install vega@/);
});

test('--plot and --map check for the chart libraries before any work: a usage error naming the option', () => {
  let thrown: unknown;
  jest.isolateModules(() => {
    jest.doMock('vega', () => {
      throw Object.assign(new Error("Cannot find module 'vega'"), { code: 'MODULE_NOT_FOUND' });
    });
    const usage = require('../../lib/cli/usage') as typeof import('../../lib/cli/usage');
    try {
      usage.checkChartLibraries('--plot');
    } catch (err) {
      thrown = err;
    }
  });
  jest.dontMock('vega');
  expect((thrown as Error).name).toBe('UsageError');
  expect((thrown as Error).message).toBe(
    `--plot: charts need vega, an optional peer dependency that is not installed: ${VEGA_INSTALL_COMMAND}`,
  );
});
