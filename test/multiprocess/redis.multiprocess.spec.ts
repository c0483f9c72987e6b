/**
 * Separate Node processes share sessions through the Redis driver: against the standalone Redis on
 * 127.0.0.1:6379 (random key prefix, removed afterwards) and against a 3-master Cluster this file
 * starts and stops.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describeMultiProcessLocking } from './multiprocess-harness.js';
import { startRedisCluster } from '../support/redis-cluster.js';

const URL = 'redis://127.0.0.1:6379';

describeMultiProcessLocking('redis (standalone)', async () => {
  const keyPrefix = `mlt:${randomBytes(6).toString('hex')}:`;
  return {
    options: { driver: 'redis', redis: { url: URL, keyPrefix } },
    cleanup: async () => {
      const admin = new Redis(URL);
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await admin.del(...keys);
      } while (cursor !== '0');
      await admin.quit();
    },
  };
});

describeMultiProcessLocking('redis (cluster, 3 masters)', async () => {
  const cluster = await startRedisCluster(3);
  return {
    options: { driver: 'redis', redis: { cluster: cluster.nodes, keyPrefix: `mlt:${randomBytes(4).toString('hex')}:` } },
    cleanup: () => cluster.stop(), // the whole cluster is thrown away
  };
});
