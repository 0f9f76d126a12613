/**
 * Following a rollout until it rests, for `rollout watch` and `rollout start --wait`.
 *
 * Exit codes: 0 succeeded; 1 failed, aborted or rolled back; 3 the rollout waits for an operator
 * (held or halted: retry, resume or rollback), or a host's rollback failed.
 */
import { formatDuration } from '../../../shared/duration';
import { isIn, NEEDS_OPERATOR_STATES, RESTING_ROLLOUT_STATES } from '../../rollout/model';
import type { RolloutView } from '../../rollout/view';
import type { OperatorClient } from '../client';
import { parseDoc } from '../common';
import { EXIT_FAILURE, printJson } from '../output';
import { printRollout, remainingText, stateText } from './rollout-print';

export const EXIT_NEEDS_OPERATOR = 3;

/** How often `rollout start --wait` asks; `rollout watch --interval` sets it for `watch`. */
export const DEFAULT_FOLLOW_INTERVAL_MS = 1000;

/**
 * 0 succeeded, 3 someone must act, 1 otherwise. A rollout that ended (aborted, failed) with a host
 * whose rollback failed still needs an operator on that host: a script must not take 1 for "done".
 */
export function watchExitCode(r: Pick<RolloutView, 'state' | 'hosts'>): number {
  if (
    isIn(NEEDS_OPERATOR_STATES, r.state) ||
    r.hosts.some((h) => h.state === 'rollback-failed' || h.state === 'held')
  )
    return EXIT_NEEDS_OPERATOR;
  return r.state === 'succeeded' ? 0 : EXIT_FAILURE;
}

/** Polls until the rollout finishes or needs an operator; a live bar on a TTY, lines otherwise. */
export async function followRollout(
  client: OperatorClient,
  id: string,
  opts: { json: boolean; intervalMs: number },
): Promise<void> {
  const tty = process.stdout.isTTY === true && !opts.json;
  let last = '';
  for (;;) {
    const r = parseDoc<RolloutView>(await client.call('GetRollout', { id }));
    const total = r.progress['hosts'] ?? 0;
    const done = (r.progress['upgraded'] ?? 0) + (r.progress['current'] ?? 0);
    const line = `${r.id} ${stateText(r)} staged ${r.progress['staged'] ?? 0}/${total} upgraded ${done}/${total} failed ${r.progress['failed'] ?? 0}${
      r.progress['unknown'] ? ` unknown ${r.progress['unknown']}` : ''
    } elapsed ${formatDuration(r.elapsedMs)}${remainingText(r)}${r.reason ? ` — ${r.reason}` : ''}`;
    if (tty) {
      const width = 20;
      const filled = total === 0 ? width : Math.round((done / total) * width);
      process.stdout.write(
        `\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line.slice(0, 150)}`,
      );
    } else if (line !== last && !opts.json) {
      process.stdout.write(`${line}\n`);
    }
    last = line;
    if (isIn(RESTING_ROLLOUT_STATES, r.state)) {
      if (tty) process.stdout.write('\n');
      if (opts.json) printJson(r);
      else printRollout(r);
      process.exitCode = watchExitCode(r);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs));
  }
}
