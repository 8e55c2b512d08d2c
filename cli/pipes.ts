/**
 * A closed stdout (`drover get events | head -2`) must end the CLI quietly, not with an unhandled
 * EPIPE and a stack trace. Once stdout's reader is gone nothing more can be shown, so the process
 * exits at once with status 0, as `kubectl … | head` does. A closed stderr only silences stderr.
 */
export function quietOnClosedPipes(proc: Pick<NodeJS.Process, 'stdout' | 'stderr' | 'exit'>): void {
  const closed = (err: NodeJS.ErrnoException) =>
    err?.code === 'EPIPE' || err?.code === 'ERR_STREAM_DESTROYED';
  proc.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (closed(err)) proc.exit(0);
    throw err;
  });
  proc.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (closed(err)) return;
    throw err;
  });
}
