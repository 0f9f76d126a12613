/** How a rollout reads on a terminal: `rollout status`, the end of `rollout watch`, the lists. */
import { formatDuration } from '../../../shared/duration';
import type { RolloutView } from '../../rollout/view';
import { printTable } from '../output';

export function stateText(r: RolloutView): string {
  return r.paused ? `${r.state} (paused)` : r.state;
}

export function progressText(r: RolloutView): string {
  const p = r.progress;
  return `${(p['upgraded'] ?? 0) + (p['current'] ?? 0)}/${p['hosts'] ?? 0} upgraded, ${p['failed'] ?? 0} failed`;
}

/** `, about 4m10s left`, or nothing when there is no estimate. */
export function remainingText(r: RolloutView): string {
  return r.estimatedRemainingMs === null ? '' : `, about ${formatDuration(r.estimatedRemainingMs)} left`;
}

export function printRollout(r: RolloutView): void {
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  out(`rollout ${r.id}: ${r.deployment} to ${r.target} — ${stateText(r)}${r.reason ? ` (${r.reason})` : ''}`);
  out(
    `  staged ${r.progress['staged'] ?? 0}/${r.progress['hosts'] ?? 0}, ${progressText(r)}, batch ${r.currentBatch ?? '-'} of ${r.batches}, elapsed ${formatDuration(r.elapsedMs)}${remainingText(r)}`,
  );
  const w = r.window;
  out(
    `  window ${w.name}: ${w.open ? `open until ${new Date(w.closesAt).toISOString()}` : `opens ${new Date(w.opensAt).toISOString()}`}`,
  );
  if (r.finalize.role !== null)
    out(
      `  finalize (${r.finalize.role}): ${r.finalize.state ?? 'not yet'}${r.finalize.host ? ` on ${r.finalize.host}` : ''}`,
    );
  printTable(
    ['HOST', 'HOSTNAME', 'ROLE', 'BATCH', 'STATE', 'PHASE', 'INSTALLED', 'STAGED', 'DOWNTIME', 'REASON'],
    r.hosts.map((h) => [
      h.hostId,
      h.hostname,
      h.role || '-',
      h.batch < 0 ? '-' : String(h.batch),
      h.unknown ? `${h.state} (unknown)` : h.rebooting ? `${h.state} (rebooting)` : h.state,
      h.phase ?? '-',
      h.installed || '-',
      h.staged || '-',
      h.downtimeMs === null ? '-' : formatDuration(h.downtimeMs),
      h.reason.slice(0, 60),
    ]),
  );
  // The table clips reasons; a held host's backup and procedure are what the operator needs whole.
  for (const h of r.hosts.filter((x) => x.held !== null && x.held !== undefined)) {
    const p = h.held as NonNullable<typeof h.held>;
    out(
      `  ${h.hostId} held past the point of no return at step ${p.stepId}; backup ${p.backupId ?? '(none)'}`,
    );
    out(`    manual procedure: ${p.manualRecovery}`);
    out(`    then: convoy rollout resolve ${r.id}`);
  }
}
