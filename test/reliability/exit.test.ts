/**
 * A process, or a worker, that used heaps ends normally, whether they were destroyed or are still alive at the
 * end, in both decommit modes and shared. Node.js 24 and later aborted every such process at exit (SIGABRT,
 * "v8::FromJust Maybe value is Nothing") and on destroy() of a 'unmap' heap: pymalloc marked its ArrayBuffer with
 * worker_threads.markAsUntransferable(), which sets a V8 detach key from Node.js 24 on, and Node's own teardown of
 * an external ArrayBuffer (and napi_detach_arraybuffer) detach without a key. The CI runs this file under Node.js
 * 24 and 26 as well as 20 (.ci/run). Each case runs in a child process (fixtures/exit-child.js, against dist/).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runChild } from '../run-child';

const lib = join(__dirname, '..', '..', 'dist', 'lib');
const child = join(__dirname, 'fixtures', 'exit-child.js');

test.each(['alive', 'destroyed', 'worker-exit', 'worker-terminate'])(
  `%s: the process exits normally (Node.js ${process.version})`,
  (name) => {
    expect(existsSync(join(lib, 'index.js')) ? 'built' : `missing ${lib}: run npm run build:ts`).toBe(
      'built',
    );
    const result = runChild([child, lib, name], name, 60_000);
    expect(result).toMatchObject({ case: name, heaps: ['dontneed', 'unmap'] });
  },
);
