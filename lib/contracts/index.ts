export * from './session-id.js';
export * from './session-exception.js';
export * from './session-record.interface.js';
export * from './session-driver.interface.js';
export * from './session-serializer.interface.js';
export * from './session.interface.js';
export * from './session-event.interface.js';
export * from './session-options.interface.js';
