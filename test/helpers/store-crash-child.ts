// Child process for the store crash test: writes as fast as it can and prints every revision it
// knows to be durable, until the parent SIGKILLs it mid-write.
import { openLowdbStore } from '../../coordinator/store/index.js';

const store = await openLowdbStore({ path: process.argv[2]!, flushDelayMs: 0 });
for (let i = 0; ; i++) {
  await store.put(`k/${i % 50}`, { i, pad: 'x'.repeat(4000) });
  if (i % 5 === 0) {
    await store.flush();
    process.stdout.write(`${store.revision()}\n`);
  }
}
