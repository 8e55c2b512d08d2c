import { chmodSync, closeSync, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { CliError, EXIT } from './errors.js';

/** Refuses (exit 2, before any request) to replace an existing file without --force. */
export function checkWritable(file: string, force: boolean): void {
  if (!existsSync(file)) return;
  if (statSync(file).isDirectory())
    throw new CliError(`${file} is a directory; name the file to write`, EXIT.USAGE);
  if (!force)
    throw new CliError(`${file} exists; nothing was written`, EXIT.USAGE, 'pass --force to replace it');
}

/**
 * Writes a file holding a secret with mode 0600: created with that mode (never readable by others,
 * not even for a moment), and an existing file replaced with --force is set to 0600 first.
 */
export function writeSecretFile(file: string, text: string, force: boolean): void {
  let fd: number;
  try {
    if (force && existsSync(file)) {
      chmodSync(file, 0o600);
      fd = openSync(file, 'w', 0o600);
    } else fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST')
      throw new CliError(`${file} exists; nothing was written`, EXIT.USAGE, 'pass --force to replace it');
    throw new CliError(`cannot write ${file}: ${e.message}`, EXIT.FAILED);
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600); // the umask cannot widen it, but a replaced file's mode is fixed here too
}
