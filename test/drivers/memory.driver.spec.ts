import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { describeDriverConformance } from './driver-conformance.js';

describeDriverConformance('memory', async () => ({ driver: new MemoryDriver(), cleanup: async () => {} }));
