/**
 * Crash injection for the durability tests: `CONVOY_FAILPOINT=host.upgrading` makes the
 * controller kill itself with SIGKILL right after it durably wrote that transition, before it
 * acts on it. `CONVOY_FAILPOINT=random:SEED` is not offered: random instants are tested from
 * outside with kill -9. Unset in production; the names are the transitions the engine writes.
 */
export type Failpoint = (name: string) => void;

export function failpointsFromEnv(env: NodeJS.ProcessEnv = process.env): Failpoint {
  const wanted = new Set((env['CONVOY_FAILPOINT'] ?? '').split(',').filter((s) => s !== ''));
  if (wanted.size === 0) return () => undefined;
  return (name) => {
    if (!wanted.has(name)) return;
    process.stderr.write(`convoy: failpoint ${name}: killing the controller\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}
