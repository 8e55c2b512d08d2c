import { open } from 'node:fs/promises';

/** The last `lines` lines of a file (reading at most `maxBytes` from its end); '' when it does not exist. */
export async function tailFile(path: string, lines: number, maxBytes = 256 * 1024): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const text = buf.toString('utf8');
    const all = text.split('\n');
    if (all[all.length - 1] === '') all.pop();
    return all.slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    await fh?.close();
  }
}
