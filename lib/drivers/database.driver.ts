// Placeholder until its issue lands; kept so the factory's lazy import type-checks.
import { SessionException } from '../contracts/session-exception.js';
import type { SessionDriver } from '../contracts/session-driver.interface.js';

export const DatabaseDriver = class {
  constructor(_options: unknown) {
    throw new SessionException('The database driver is not implemented yet.');
  }
} as unknown as new (options: unknown) => SessionDriver;
