import type { Logger } from 'pino';
import { LAST_OUTPUT_MAX_LENGTH, LAST_OUTPUT_MAX_LINES } from '../protocol/index.js';
import type { Runtime, RuntimeInstanceStatus } from './runtime/types.js';

/**
 * The last lines of a failing instance's output, for its status report: `drover describe node`
 * shows them, so an operator reads "unknown flag: --bogus" without a shell on the host. The text
 * is made safe here (the coordinator's schema refuses anything else): terminal escapes and control
 * characters removed, valid UTF-8, at most LAST_OUTPUT_MAX_LINES lines and LAST_OUTPUT_MAX_LENGTH
 * bytes.
 */

/** CSI (`ESC [ … final`), OSC (`ESC ] … BEL|ESC \`) and the short escapes (`ESC 7`, `ESC ( B`), as terminals read them. */
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]?/g;
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Cuts `line` to at most `maxBytes` UTF-8 bytes on a code-point boundary, marking the cut with `…`. */
function cutBytes(line: string, maxBytes: number): string {
  if (Buffer.byteLength(line) <= maxBytes) return line;
  const room = maxBytes - 3; // the ellipsis is 3 bytes
  let used = 0;
  let out = '';
  for (const ch of line) {
    const n = Buffer.byteLength(ch);
    if (used + n > room) break;
    used += n;
    out += ch;
  }
  return `${out}…`;
}

/**
 * The newest `maxLines` lines of `text`, cleaned for an operator's terminal. A carriage return
 * keeps what a terminal would show (the text after it: progress bars); escapes, other control
 * characters and unpaired surrogates go; blank lines at the end go. When the lines pass
 * `maxBytes`, older lines are dropped first; a single line too long is cut with `…`.
 */
export function sanitizeOutput(
  text: string,
  maxLines = LAST_OUTPUT_MAX_LINES,
  maxBytes = LAST_OUTPUT_MAX_LENGTH,
): string {
  const lines = text
    .replace(LONE_SURROGATE, '\ufffd')
    .replace(ESCAPES, '')
    .split(/\r?\n/)
    .map((l) => {
      const shown = l.slice(l.lastIndexOf('\r') + 1);
      return shown.replace(CONTROLS, '').trimEnd();
    });
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const kept = lines.slice(-maxLines).map((l) => cutBytes(l, maxBytes));
  let bytes = kept.reduce((n, l) => n + Buffer.byteLength(l), 0) + Math.max(0, kept.length - 1);
  while (kept.length > 1 && bytes > maxBytes) bytes -= Buffer.byteLength(kept.shift()!) + 1;
  while (kept.length && kept[0] === '') kept.shift();
  return kept.join('\n');
}

/** An instance whose output the status carries: it crash-loops, failed, or waits out a restart after a failed exit. */
export function isFailing(rs: RuntimeInstanceStatus | undefined): boolean {
  if (!rs) return false;
  if (rs.state === 'crashloop' || rs.state === 'failed') return true;
  return rs.state === 'backoff' && rs.lastExitCode !== 0;
}

/**
 * Keeps the last output of each failing instance, read from the runtime (the process runtime's log
 * file, the unit's journal) whenever the instance's state changes. Reading is asynchronous and
 * statuses are built synchronously, so the text is fetched here and `changed` tells the agent to
 * publish again. At most one read per instance runs; a change during it reads once more after.
 */
export class LastOutputs {
  private readonly text = new Map<string, string>();
  private readonly reading = new Map<string, { again: boolean }>();
  private closed = false;

  constructor(
    private readonly runtime: Pick<Runtime, 'logs' | 'status'>,
    private readonly changed: (id: string) => void,
    private readonly log: Logger,
  ) {}

  /** The cleaned output while the instance is failing, else undefined. */
  get(id: string): string | undefined {
    return isFailing(this.runtime.status(id)) ? this.text.get(id) : undefined;
  }

  /** Called on every runtime change of `id`. */
  observe(id: string): void {
    if (this.closed) return;
    if (!isFailing(this.runtime.status(id))) {
      this.text.delete(id);
      return;
    }
    const busy = this.reading.get(id);
    if (busy) {
      busy.again = true;
      return;
    }
    void this.read(id);
  }

  close(): void {
    this.closed = true;
  }

  private async read(id: string): Promise<void> {
    const slot = { again: false };
    this.reading.set(id, slot);
    try {
      do {
        slot.again = false;
        let raw = '';
        try {
          // more lines than kept: blank and escape-only lines drop out in the cleaning
          raw = await this.runtime.logs(id, LAST_OUTPUT_MAX_LINES * 2);
        } catch (err) {
          this.log.debug({ err, instance: id }, 'cannot read the last output');
        }
        if (this.closed) return;
        const clean = sanitizeOutput(raw);
        if (!isFailing(this.runtime.status(id))) this.text.delete(id);
        else if (clean !== this.text.get(id)) {
          if (clean) this.text.set(id, clean);
          else this.text.delete(id);
          this.changed(id);
        }
      } while (slot.again && !this.closed);
    } finally {
      this.reading.delete(id);
    }
  }
}
