import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PhaseJournal } from './journal';

const ok = (backupId: string) => ({ ok: true, durationMs: 1, outputTail: 'long output', backupId });

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'convoy-pj-'));
  made.push(d);
  return d;
}

describe('phase journal', () => {
  it('survives reopening and says which step was entered and not left', () => {
    const dir = tempDir();
    const j = PhaseJournal.open(dir);
    j.begin('r1', 'demo', 'upgrade', false);
    j.leave('a', ok('b1'));
    j.enter('b', 2, 5);
    expect(PhaseJournal.open(dir).interrupted()).toMatchObject({
      runId: 'r1',
      current: { stepId: 'b', attempt: 2 },
    });
  });

  it('keeps an earlier run’s completed steps when another run came between, without their output', () => {
    const dir = tempDir();
    const j = PhaseJournal.open(dir);
    j.begin('upgrade-run', 'demo', 'upgrade', false);
    j.leave('backup', ok('bk-1'));
    j.finish('succeeded');
    j.begin('other-run', 'demo', 'check', false);
    j.finish('succeeded');
    const again = PhaseJournal.open(dir);
    again.begin('upgrade-run', 'demo', 'rollback', true);
    expect(again.current?.completed['backup']).toMatchObject({ ok: true, backupId: 'bk-1', outputTail: '' });
    again.begin('fresh', 'demo', 'rollback', true);
    expect(again.current?.completed).toEqual({});
  });

  it('forgets the oldest runs beyond twenty', () => {
    const dir = tempDir();
    const j = PhaseJournal.open(dir);
    for (let i = 0; i < 25; i++) {
      j.begin(`run-${i}`, 'demo', 'check', false);
      j.leave('s', ok(`b${i}`));
    }
    j.begin('last', 'demo', 'check', false);
    const history = Object.keys(j.current?.history ?? {});
    expect(history).toHaveLength(20);
    expect(history).not.toContain('run-0');
    expect(history).toContain('run-24');
  });

  it('keeps a journaled reboot across a resumed run of the same run, and drops it when its step leaves', () => {
    const dir = tempDir();
    const j = PhaseJournal.open(dir);
    j.begin('r1', 'demo', 'upgrade', false);
    j.leave('apply', ok(''));
    j.enter('reboot', 1, 5);
    j.markReboot('reboot', 'boot-a', 6);
    // The agent after the boot: the same run is sent again.
    const after = PhaseJournal.open(dir);
    expect(after.interrupted()?.reboot).toEqual({ stepId: 'reboot', bootId: 'boot-a', atMs: 6 });
    after.begin('r1', 'demo', 'upgrade', true);
    after.enter('reboot', 1, 7);
    expect(after.current?.reboot).toEqual({ stepId: 'reboot', bootId: 'boot-a', atMs: 6 });
    after.leave('other', ok(''));
    expect(after.current?.reboot?.stepId).toBe('reboot');
    after.leave('reboot', ok(''));
    expect(after.current?.reboot).toBeUndefined();
    // Another run never inherits it.
    after.markReboot('reboot', 'boot-b', 8);
    after.begin('r2', 'demo', 'upgrade', true);
    expect(after.current?.reboot).toBeUndefined();
  });
});
