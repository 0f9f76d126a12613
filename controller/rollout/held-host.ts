/**
 * A host held past the point of no return: its rollback was refused by the agent
 * (PAST_POINT_OF_NO_RETURN) because the upgrade or finalize had started a step the recipe marks
 * `pointOfNoReturn` (Cells: the first start of a new binary migrates the data). Nothing automatic
 * can bring it back, so the host rests `held` and the rollout halts for an operator, who follows the
 * recipe's manual procedure with the backup named here, then `convoy rollout resolve` (actions.ts).
 *
 * The step, the backup and the procedure live in the host's reason, in one fixed form that
 * `heldOf` reads back for the status view (as reboot-wait.ts does for a rebooting host): no new
 * column, and an operator reading the raw reason sees all of it.
 */

/** What the agent's report says of the point (shared/phase-contract.ts `pointOfNoReturn`). */
export interface HeldPoint {
  readonly stepId: string;
  /** The newest backup taken before the point; null when no step took one. */
  readonly backupId: string | null;
  /** The recipe's `manualRecovery`. */
  readonly manualRecovery: string;
}

const PREFIX = 'past the point of no return at step ';
const NO_BACKUP = '(none)';
const FORM = /^past the point of no return at step (\S+); backup (.+?); manual procedure: ([\s\S]*)$/;

/** The reason a held host shows. */
export function heldReason(p: HeldPoint): string {
  const procedure = p.manualRecovery.trim() === '' ? 'none given by the recipe' : p.manualRecovery.trim();
  return `${PREFIX}${p.stepId}; backup ${p.backupId ?? NO_BACKUP}; manual procedure: ${procedure}`;
}

/** The point a held host's reason names; undefined for any other reason. */
export function heldOf(reason: string): HeldPoint | undefined {
  const m = FORM.exec(reason);
  if (m === null) return undefined;
  const [, stepId, backup, manualRecovery] = m as unknown as [string, string, string, string];
  return { stepId, backupId: backup === NO_BACKUP ? null : backup, manualRecovery };
}

/**
 * Why the rollout halts on held hosts. `then` is what follows the manual recovery: resume (the
 * upgrade goes on) or rollback (a rollout rollback that the held hosts interrupted).
 */
export function heldRolloutReason(hostIds: readonly string[], then: 'resume' | 'rollback'): string {
  return (
    `${hostIds.join(', ')} held past the point of no return (rollback refused): follow the manual ` +
    `procedure with the backup its reason shows, then resolve and ${then}; or abort`
  );
}

/** The step marked `pointOfNoReturn` among the steps a phase ran (started), if any. */
export function pointStepRan(
  steps: readonly { readonly id: string; readonly pointOfNoReturn?: boolean }[],
  ran: readonly string[],
): string | undefined {
  return steps.find((s) => s.pointOfNoReturn === true && ran.includes(s.id))?.id;
}
