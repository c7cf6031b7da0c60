/**
 * Loads the chart libraries, Vega and Vega-Lite, for every chart pymalloc draws (`--plot`, `npm run bench`).
 * They are optional peer dependencies, not dependencies: about 27 MB that only charts need, so installing
 * pymalloc does not bring them, and asking for a chart without them is an error that says what to install.
 *
 * Both are held to 5.x (the peerDependencies ranges in package.json) because 6.x ships as ES modules only and
 * this package is CommonJS.
 */

/** The two libraries, as their CommonJS entry points export them. */
export interface VegaLibraries {
  readonly vega: typeof import('vega');
  readonly vegaLite: typeof import('vega-lite');
}

/** What a user runs to make charts work; kept equal to package.json's peerDependencies by a test. */
export const VEGA_INSTALL_COMMAND = 'npm install vega@~5.33.1 vega-lite@~5.23.0';

/** Thrown when Vega or Vega-Lite is missing or is a major version this package cannot load. */
export class ChartLibraryError extends Error {
  readonly code = 'ERR_PYMALLOC_CHART_LIBRARY';

  constructor(message: string) {
    super(message);
    this.name = 'ChartLibraryError';
  }
}

let loaded: VegaLibraries | undefined;

function requireLibrary<T>(name: 'vega' | 'vega-lite'): T {
  try {
    return require(name) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const notFound = e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(`'${name}'`);
    if (notFound) {
      throw new ChartLibraryError(
        `charts need ${name}, an optional peer dependency that is not installed: ${VEGA_INSTALL_COMMAND}`,
      );
    }
    if (e.code === 'ERR_REQUIRE_ESM') {
      throw new ChartLibraryError(
        `the installed ${name} is ES modules only (6.x or later); charts need 5.x: ${VEGA_INSTALL_COMMAND}`,
      );
    }
    throw err;
  }
}

/**
 * Vega and Vega-Lite, loaded on first call (through require, which jest can follow).
 * @throws ChartLibraryError naming the missing library and the install command
 */
export function loadVega(): VegaLibraries {
  loaded ??= {
    vega: requireLibrary<typeof import('vega')>('vega'),
    vegaLite: requireLibrary<typeof import('vega-lite')>('vega-lite'),
  };
  return loaded;
}
