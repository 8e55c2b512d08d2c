import { terminalConfirm } from './confirm.js';
import { quietOnClosedPipes } from './pipes.js';
import { run } from './run.js';

// `drover status | head -2`: when the reader goes away, exit quietly instead of an EPIPE stack trace.
quietOnClosedPipes(process);

// Ctrl-C ends watches and waits cleanly (a second Ctrl-C exits at once).
const controller = new AbortController();
process.once('SIGINT', () => {
  controller.abort();
  process.once('SIGINT', () => process.exit(130));
});

run(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  signal: controller.signal,
  confirm: terminalConfirm(),
  // a file download goes to a pipe or a file, never onto a terminal
  ...(process.stdout.isTTY ? {} : { outBytes: (b: Uint8Array) => void process.stdout.write(b) }),
}).then((code) => {
  process.exitCode = code;
});
