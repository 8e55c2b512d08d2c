// The REST contract of drover-coordinator: request and response schemas, view types, and the one
// client both the CLI and the lab use. The NATS contract is ../index.ts.
export * from './client.js';
export * from './schemas.js';
export * as seeds from './seeds.js';
export * as vc from './vc.js';
