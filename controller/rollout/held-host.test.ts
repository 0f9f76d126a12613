import { CELLS_POINT } from '../../test/helpers/rollout-records';
import { heldOf, heldReason, heldRolloutReason, pointStepRan } from './held-host';

describe('held host › the reason names the step, the backup and the procedure', () => {
  it('reads back what it wrote', () => {
    const reason = heldReason(CELLS_POINT);
    expect(reason).toBe(
      'past the point of no return at step start-cells; backup r-1-u-backup-data; manual procedure: ' +
        'stop cells; restore the data backup shown here; start cells',
    );
    expect(heldOf(reason)).toEqual(CELLS_POINT);
  });

  it('says when no step took a backup, and when the recipe gives no procedure', () => {
    const reason = heldReason({ stepId: 'setup-update', backupId: null, manualRecovery: ' ' });
    expect(reason).toContain('backup (none); manual procedure: none given by the recipe');
    expect(heldOf(reason)).toEqual({
      stepId: 'setup-update',
      backupId: null,
      manualRecovery: 'none given by the recipe',
    });
  });

  it('any other reason is not a held one', () => {
    expect(heldOf('apply: EXIT 1')).toBeUndefined();
    expect(heldOf('')).toBeUndefined();
  });

  it('the rollout reason says what comes after the manual procedure', () => {
    expect(heldRolloutReason(['h1', 'h3'], 'resume')).toMatch(
      /^h1, h3 held past .* then resolve and resume; or abort$/,
    );
  });

  it('finds the point-of-no-return step among the steps a phase ran', () => {
    const steps = [{ id: 'prepare' }, { id: 'setup-update', pointOfNoReturn: true }];
    expect(pointStepRan(steps, ['prepare', 'setup-update'])).toBe('setup-update');
    expect(pointStepRan(steps, ['prepare'])).toBeUndefined();
  });
});
