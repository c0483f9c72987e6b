import type { SessionDriver } from '../contracts/session-driver.interface.js';
import type { SessionModuleOptions } from '../contracts/session-options.interface.js';
import { SessionException } from '../contracts/session-exception.js';
import { MemoryDriver } from './memory.driver.js';

type DriverLoader = (options: SessionModuleOptions) => Promise<SessionDriver>;

/**
 * Named drivers. Each loader imports its driver file on demand, so `typeorm` and `ioredis`
 * are loaded only by an application that picks the driver that needs them.
 * A new driver is one new file plus one line here.
 */
const LOADERS: Record<string, DriverLoader> = {
  memory: async () => new MemoryDriver(),
  file: async (o) => new (await import('./file.driver.js')).FileDriver(o.file ?? {}),
  database: async (o) => new (await import('./database.driver.js')).DatabaseDriver(o.database ?? {}),
  redis: async (o) => new (await import('./redis.driver.js')).RedisDriver(o.redis ?? {}),
};

export const DRIVER_NAMES = Object.keys(LOADERS);

/** Builds the configured driver (not yet opened: the module calls `open()`). */
export class DriverFactory {
  static async create(options: SessionModuleOptions): Promise<SessionDriver> {
    const driver = options.driver ?? 'file';
    if (typeof driver === 'string') {
      const load = LOADERS[driver];
      if (!load) throw new SessionException(`Unknown session driver "${driver}": use one of ${DRIVER_NAMES.join(', ')}, a SessionDriver class or an instance.`);
      return load(options);
    }
    if (typeof driver === 'function') return new driver();
    if (isDriver(driver)) return driver;
    throw new SessionException('options.driver must be a driver name, a SessionDriver class or a SessionDriver instance.');
  }
}

export function isDriver(value: unknown): value is SessionDriver {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['open', 'close', 'read', 'write', 'destroy', 'gc', 'lock', 'unlock', 'listByUser', 'destroyByUser'].every((m) => typeof v[m] === 'function');
}
