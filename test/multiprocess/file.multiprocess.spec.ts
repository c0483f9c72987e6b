import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeMultiProcessLocking } from './multiprocess-harness.js';

describeMultiProcessLocking('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ml-file-mp-'));
  return {
    options: { driver: 'file', file: { path: join(dir, 'sessions') } },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
