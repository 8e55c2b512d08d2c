import { describe, expect, it } from 'vitest';
import { isFailing, LastOutputs, sanitizeOutput } from '../../agent/last-output.js';
import type { RuntimeInstanceStatus } from '../../agent/runtime/types.js';
import { buildInstanceStatus } from '../../agent/status.js';
import { silentLogger } from '../../lib/logger.js';
import {
  DecodeError,
  decodeMessage,
  encode,
  type InstanceSpec,
  LAST_OUTPUT_MAX_LENGTH,
  type NodeStatus,
} from '../../protocol/index.js';
import { sampleInstance, sampleMessages } from '../helpers/fixtures.js';

const ESC = '\u001b';

describe('sanitizeOutput: the last lines, safe for a terminal', () => {
  it('keeps the newest 20 lines and drops trailing blank lines', () => {
    const text = `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n\n\n`;
    const out = sanitizeOutput(text);
    expect(out.split('\n')).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 10}`));
    expect(sanitizeOutput('Error: unknown flag: --bogus\n', 5)).toBe('Error: unknown flag: --bogus');
    expect(sanitizeOutput('')).toBe('');
    expect(sanitizeOutput('\n\n  \n')).toBe('');
  });

  it('removes colour and cursor escapes, OSC titles and other control characters', () => {
    const text = `${ESC}[31mError:${ESC}[0m bad ${ESC}[2K${ESC}]0;title\u0007flag\u0000\u0008\u007f\u009b x${ESC}7\tend`;
    expect(sanitizeOutput(text)).toBe('Error: bad flag x\tend');
    // bidirectional overrides could make a line read differently from what it holds
    expect(sanitizeOutput('abc\u202edcba\u2066x\u2069')).toBe('abcdcbax');
  });

  it('a carriage return keeps what a terminal shows (the text after it); CRLF is a newline', () => {
    expect(sanitizeOutput('progress 10%\rprogress 99%\rdone\r\nnext\r\n')).toBe('done\nnext');
  });

  it('replaces unpaired surrogates so the text is valid UTF-8; keeps real non-ASCII text', () => {
    const out = sanitizeOutput('bad \ud800 half, ok 😀 ü');
    expect(out).toBe('bad \ufffd half, ok 😀 ü');
    expect(Buffer.from(out, 'utf8').toString('utf8')).toBe(out);
  });

  it('stays within the byte cap: older lines go first, one long line is cut on a code point', () => {
    const lines = Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(500, 'x'));
    const out = sanitizeOutput(lines.join('\n'));
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(LAST_OUTPUT_MAX_LENGTH);
    expect(out.endsWith(lines[19]!)).toBe(true);
    expect(out.split('\n')[0]).toBe(lines[12]); // 8 lines of 501 bytes fit in 4096
    const long = sanitizeOutput('é'.repeat(5000));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(LAST_OUTPUT_MAX_LENGTH);
    expect(long.endsWith('é…')).toBe(true);
    expect(long).not.toContain('\ufffd');
  });

  it('whatever the input, the result passes the protocol schema', () => {
    const nasty = Array.from({ length: 2000 }, (_, i) => String.fromCharCode(i % 0x2100)).join('');
    const msg = statusWith({ lastOutput: sanitizeOutput(`${nasty}\n${nasty}`) });
    expect(() => decodeMessage('NodeStatus', encode(msg))).not.toThrow();
  });
});

function rs(over: Partial<RuntimeInstanceStatus>): RuntimeInstanceStatus {
  return { id: 'web#0', checksum: 'c', state: 'running', restarts: 0, consecutiveFailures: 0, ...over };
}

describe('which instances carry their last output', () => {
  it('CrashLoop, Failed, and a restart backoff after a failed exit; not a running or cleanly exited one', () => {
    expect(isFailing(rs({ state: 'crashloop' }))).toBe(true);
    expect(isFailing(rs({ state: 'failed' }))).toBe(true);
    expect(isFailing(rs({ state: 'backoff', lastExitCode: 2 }))).toBe(true);
    expect(isFailing(rs({ state: 'backoff', lastError: 'killed by SIGSEGV' }))).toBe(true);
    expect(isFailing(rs({ state: 'backoff', lastExitCode: 0 }))).toBe(false);
    expect(isFailing(rs({ state: 'running' }))).toBe(false);
    expect(isFailing(rs({ state: 'stopped', lastExitCode: 1 }))).toBe(false);
    expect(isFailing(undefined)).toBe(false);
  });

  it('buildInstanceStatus adds lastOutput and lastExitCode only while failing', () => {
    const spec = { ...sampleInstance(), checksum: 'c' } as InstanceSpec;
    const crash = buildInstanceStatus(
      spec,
      rs({ state: 'crashloop', lastExitCode: 2, lastError: 'exited with code 2' }),
      undefined,
      false,
      'Error: unknown flag: --bogus',
    );
    expect(crash).toMatchObject({
      phase: 'CrashLoop',
      lastError: 'exited with code 2',
      lastOutput: 'Error: unknown flag: --bogus',
      lastExitCode: 2,
    });
    const ok = buildInstanceStatus(spec, rs({ state: 'running', pid: 7, lastExitCode: 2 }), undefined, false);
    expect(ok).not.toHaveProperty('lastOutput');
    expect(ok).not.toHaveProperty('lastExitCode');
  });
});

/** The port LastOutputs reads: a status per id and the output as the runtime would give it. */
class FakeRuntime {
  states = new Map<string, RuntimeInstanceStatus>();
  output = new Map<string, string>();
  reads = 0;
  gate: Promise<void> | undefined;
  status(id: string) {
    return this.states.get(id);
  }
  async logs(id: string, lines: number): Promise<string> {
    this.reads++;
    expect(lines).toBeGreaterThanOrEqual(20);
    await this.gate;
    if (this.output.get(id) === 'THROW') throw new Error('journalctl is gone');
    return this.output.get(id) ?? '';
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('LastOutputs: reads the output when an instance starts failing', () => {
  it('reads on a change into a failing state, tells the agent, forgets it once the instance recovers', async () => {
    const rt = new FakeRuntime();
    const changed: string[] = [];
    const outs = new LastOutputs(rt, (id) => changed.push(id), silentLogger);
    rt.states.set('web#0', rs({ state: 'running', pid: 3 }));
    outs.observe('web#0');
    await settle();
    expect(rt.reads).toBe(0);
    rt.states.set('web#0', rs({ state: 'crashloop', lastExitCode: 1 }));
    rt.output.set('web#0', `${ESC}[31mError: unknown flag: --bogus${ESC}[0m\n`);
    outs.observe('web#0');
    await settle();
    expect(outs.get('web#0')).toBe('Error: unknown flag: --bogus');
    expect(changed).toEqual(['web#0']);
    outs.observe('web#0'); // the same text again: no new publish
    await settle();
    expect(changed).toEqual(['web#0']);
    rt.states.set('web#0', rs({ state: 'running', pid: 4 }));
    expect(outs.get('web#0')).toBeUndefined();
    outs.observe('web#0');
    rt.states.set('web#0', rs({ state: 'failed', lastExitCode: 1 }));
    rt.output.set('web#0', 'other\n');
    outs.observe('web#0');
    await settle();
    expect(outs.get('web#0')).toBe('other');
  });

  it('one read at a time: a change during a read reads once more after it', async () => {
    const rt = new FakeRuntime();
    const outs = new LastOutputs(rt, () => {}, silentLogger);
    let open!: () => void;
    rt.gate = new Promise((r) => {
      open = r;
    });
    rt.states.set('web#0', rs({ state: 'backoff', lastExitCode: 1 }));
    rt.output.set('web#0', 'first');
    outs.observe('web#0');
    outs.observe('web#0');
    outs.observe('web#0');
    rt.output.set('web#0', 'second');
    open();
    await settle();
    await settle();
    expect(rt.reads).toBe(2);
    expect(outs.get('web#0')).toBe('second');
  });

  it('a runtime that cannot read its log leaves no output and does not throw', async () => {
    const rt = new FakeRuntime();
    const outs = new LastOutputs(rt, () => {}, silentLogger);
    rt.states.set('web#0', rs({ state: 'crashloop' }));
    rt.output.set('web#0', 'THROW');
    outs.observe('web#0');
    await settle();
    expect(outs.get('web#0')).toBeUndefined();
  });
});

function statusWith(fields: Record<string, unknown>): NodeStatus {
  const st = structuredClone(sampleMessages().NodeStatus);
  Object.assign(st.instances[0]!, { phase: 'CrashLoop', health: 'unknown' }, fields);
  return st;
}

function decodeError(msg: unknown): DecodeError {
  try {
    decodeMessage('NodeStatus', encode(msg));
  } catch (err) {
    return err as DecodeError;
  }
  throw new Error('decoded');
}

describe('the status schema bounds what a node may report', () => {
  it('a status without the new fields (an older agent) still decodes', () => {
    const st = sampleMessages().NodeStatus;
    expect(st.instances[0]).not.toHaveProperty('lastOutput');
    expect(decodeMessage('NodeStatus', encode(st)).instances[0]?.id).toBe('web#0');
  });

  it('a well-formed last output and exit code decode', () => {
    const st = statusWith({ lastOutput: 'Error: unknown flag: --bogus\n\tusage: x', lastExitCode: 2 });
    expect(decodeMessage('NodeStatus', encode(st)).instances[0]).toMatchObject({ lastExitCode: 2 });
  });

  it.each([
    ['too long', { lastOutput: 'x'.repeat(LAST_OUTPUT_MAX_LENGTH + 1) }, '/instances/0/lastOutput'],
    ['not a string', { lastOutput: 42 }, '/instances/0/lastOutput'],
    ['an object', { lastOutput: { text: 'x' } }, '/instances/0/lastOutput'],
    ['a terminal escape', { lastOutput: `${ESC}[2J gone` }, '/instances/0/lastOutput'],
    ['a NUL', { lastOutput: 'a\u0000b' }, '/instances/0/lastOutput'],
    ['an exit code past 255', { lastExitCode: 256 }, '/instances/0/lastExitCode'],
    ['a negative exit code', { lastExitCode: -1 }, '/instances/0/lastExitCode'],
    ['a fractional exit code', { lastExitCode: 1.5 }, '/instances/0/lastExitCode'],
  ])('refuses %s with DROVER_ERR_DECODE naming the field', (_what, fields, field) => {
    const err = decodeError(statusWith(fields));
    expect(err).toBeInstanceOf(DecodeError);
    expect(err.code).toBe('DROVER_ERR_DECODE');
    expect(err.field).toBe(field);
  });
});
