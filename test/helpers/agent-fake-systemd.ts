import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A recording fake `systemctl` and `journalctl` for a host where systemd is not PID 1. It records
 * every call and really runs the unit's ExecStart (detached, its own process group), so the
 * runtime conformance suite exercises the systemd runtime against real processes. It does not
 * implement Restart=: crash restarts are systemd's job and are covered by `systemd-analyze verify`
 * of the rendered units instead.
 */
const SYSTEMCTL = String.raw`#!/usr/bin/env node
'use strict';
const fs = require('fs'), path = require('path'), cp = require('child_process');
const state = process.env.FAKE_SYSTEMD_STATE, unitDir = process.env.FAKE_SYSTEMD_UNIT_DIR;
const args = process.argv.slice(2);
fs.appendFileSync(path.join(state, 'calls.log'), JSON.stringify(args) + '\n');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
function words(s) {
  const out = []; let i = 0;
  while (i < s.length) {
    while (s[i] === ' ') i++;
    if (i >= s.length) break;
    let w = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\') { i++; const c = s[i]; w += c === 'n' ? '\n' : c === 't' ? '\t' : c; }
        else w += s[i];
        i++;
      }
      i++;
    } else { while (i < s.length && s[i] !== ' ') w += s[i++]; }
    out.push(w.replace(/%%/g, '%').replace(/\$\$/g, '$'));
  }
  return out;
}
function parseUnit(u) {
  const text = fs.readFileSync(path.join(unitDir, u), 'utf8');
  const spec = { argv: [], env: {}, cwd: '/' };
  for (const line of text.split('\n')) {
    const i = line.indexOf('='); if (i < 0) continue;
    const k = line.slice(0, i), v = line.slice(i + 1);
    if (k === 'ExecStart') spec.argv = words(v);
    if (k === 'Environment') for (const kv of words(v)) { const j = kv.indexOf('='); spec.env[kv.slice(0, j)] = kv.slice(j + 1); }
    if (k === 'WorkingDirectory') spec.cwd = v;
  }
  return spec;
}
function alive(pid) {
  if (!pid) return false;
  try { const st = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); const s = st.slice(st.lastIndexOf(')') + 2).split(' ')[0]; return s !== 'Z' && s !== 'X'; } catch { return false; }
}
const pidFile = (u) => path.join(state, u + '.pid');
const readPid = (u) => { try { return Number(fs.readFileSync(pidFile(u), 'utf8')); } catch { return 0; } };
function start(u) {
  if (alive(readPid(u))) return;
  const spec = parseUnit(u);
  const fd = fs.openSync(path.join(state, u + '.log'), 'a');
  const c = cp.spawn(spec.argv[0], spec.argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: Object.assign({ PATH: process.env.PATH }, spec.env), cwd: spec.cwd });
  c.unref();
  fs.writeFileSync(pidFile(u), String(c.pid));
  const n = path.join(state, u + '.starts'); let k = 0; try { k = Number(fs.readFileSync(n, 'utf8')); } catch {}
  fs.writeFileSync(n, String(k + 1));
}
function stop(u) {
  const pid = readPid(u);
  if (pid) {
    try { process.kill(-pid, 'SIGTERM'); } catch {}
    for (let i = 0; i < 200 && alive(pid); i++) sleep(25);
    try { process.kill(-pid, 'SIGKILL'); } catch {}
  }
  fs.rmSync(pidFile(u), { force: true });
}
const units = args.filter((a) => !a.startsWith('-')).slice(1);
const cmd = args[0];
const now = args.includes('--now');
switch (cmd) {
  case 'daemon-reload': case 'reset-failed': break;
  case 'enable': for (const u of units) { fs.writeFileSync(path.join(state, u + '.enabled'), ''); if (now) start(u); } break;
  case 'disable': for (const u of units) { fs.rmSync(path.join(state, u + '.enabled'), { force: true }); if (now) stop(u); } break;
  case 'start': units.forEach(start); break;
  case 'stop': units.forEach(stop); break;
  case 'restart': for (const u of units) { stop(u); start(u); } break;
  case 'is-active': {
    const u = units[0]; const a = alive(readPid(u)); process.stdout.write(a ? 'active\n' : 'inactive\n'); process.exit(a ? 0 : 3);
  }
  case 'show': {
    const blocks = units.map((u) => {
      const pid = readPid(u); const a = alive(pid); const known = fs.existsSync(pidFile(u));
      return ['Id=' + u, 'ActiveState=' + (a ? 'active' : known ? 'failed' : 'inactive'), 'SubState=' + (a ? 'running' : known ? 'failed' : 'dead'),
        'MainPID=' + (a ? pid : 0), 'NRestarts=0', 'Result=' + (a || !known ? 'success' : 'exit-code'), 'ExecMainStartTimestamp='].join('\n');
    });
    process.stdout.write(blocks.join('\n\n') + '\n');
    break;
  }
  default: process.stderr.write('fake systemctl: unsupported ' + cmd + '\n'); process.exit(1);
}
`;

const JOURNALCTL = String.raw`#!/usr/bin/env node
'use strict';
const fs = require('fs'), path = require('path');
const args = process.argv.slice(2);
const unit = args[args.indexOf('-u') + 1];
const n = Number(args[args.indexOf('-n') + 1] || 10);
fs.appendFileSync(path.join(process.env.FAKE_SYSTEMD_STATE, 'calls.log'), JSON.stringify(['journalctl', ...args]) + '\n');
let text = ''; try { text = fs.readFileSync(path.join(process.env.FAKE_SYSTEMD_STATE, unit + '.log'), 'utf8'); } catch {}
const lines = text.split('\n'); if (lines[lines.length - 1] === '') lines.pop();
process.stdout.write(lines.slice(-n).join('\n') + '\n');
`;

export interface FakeSystemd {
  binDir: string;
  unitDir: string;
  stateDir: string;
  /** env for the runtime's systemctl calls: the fake first on PATH */
  env: Record<string, string>;
  /** every systemctl call so far, as argv arrays */
  calls(): string[][];
  /** the pid the fake started for a unit, if it runs */
  pidOf(unit: string): number | undefined;
  /** how many times the fake started the unit */
  starts(unit: string): number;
}

export function installFakeSystemd(dir: string): FakeSystemd {
  const binDir = join(dir, 'bin');
  const unitDir = join(dir, 'units');
  const stateDir = join(dir, 'state');
  for (const d of [binDir, unitDir, stateDir]) mkdirSync(d, { recursive: true });
  writeFileSync(join(binDir, 'systemctl'), SYSTEMCTL);
  writeFileSync(join(binDir, 'journalctl'), JOURNALCTL);
  chmodSync(join(binDir, 'systemctl'), 0o755);
  chmodSync(join(binDir, 'journalctl'), 0o755);
  const env = {
    PATH: `${binDir}:${process.env.PATH ?? ''}`,
    FAKE_SYSTEMD_STATE: stateDir,
    FAKE_SYSTEMD_UNIT_DIR: unitDir,
  };
  return {
    binDir,
    unitDir,
    stateDir,
    env,
    calls: () => {
      try {
        return readFileSync(join(stateDir, 'calls.log'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as string[]);
      } catch {
        return [];
      }
    },
    pidOf: (unit) => {
      try {
        return Number(readFileSync(join(stateDir, `${unit}.pid`), 'utf8')) || undefined;
      } catch {
        return undefined;
      }
    },
    starts: (unit) => {
      try {
        return Number(readFileSync(join(stateDir, `${unit}.starts`), 'utf8'));
      } catch {
        return 0;
      }
    },
  };
}
