import { type ChildProcess, spawn } from 'node:child_process';
import { DROVER } from '../helpers/cli-daemon.js';

export { DROVER };

/** Starts the bundled CLI with piped stdio. */
export function spawnDrover(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [DROVER, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Waits for a spawned CLI to exit; collects stderr (and stdout, while it is open). */
export function waitExit(
  child: ChildProcess,
  timeoutMs = 30_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b) => {
    stdout += b;
  });
  child.stderr?.on('data', (b) => {
    stderr += b;
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`drover did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
