/**
 * The `reboot` step in the real phase runner, with the real journal and real programs; the host's
 * boot id and reboot-required flag are files of the test (agent/host/reboot-facts.ts), and the
 * "reboot" command only leaves a mark: the agent is not killed here (test/e2e/reboot.test.ts does
 * that), so what is shown is the decision at each point of the step's life.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hostRebootFacts, type RebootFacts } from '../../agent/host/reboot-facts';
import { PhaseJournal } from '../../agent/phase/journal';
import { runPhase, type RunnerDeps } from '../../agent/phase/runner';
import { STEP_REGISTRY } from '../../agent/steps';
import { silentLogger } from '../../shared/logger';
import { compileRecipe } from '../../shared/recipe/compile';
import { tempDir } from '../helpers/processes';
import { runnerContext } from '../helpers/step-context';

jest.setTimeout(20_000);

interface Host {
  readonly dir: string;
  readonly bootFile: string;
  readonly flagFile: string;
  readonly bin: string;
  readonly log: string;
}

function host(): Host {
  const dir = tempDir('reboot-step');
  const h = {
    dir,
    bootFile: path.join(dir, 'boot_id'),
    flagFile: path.join(dir, 'reboot-required'),
    bin: path.join(dir, 'bin'),
    log: path.join(dir, 'ran.log'),
  };
  writeFileSync(h.bootFile, 'boot-a\n');
  mkdirSync(path.join(dir, 'state'));
  return h;
}

function recipe(h: Host, reboot: string): ReturnType<typeof compileRecipe> {
  const append = (word: string): string => `['/bin/sh', '-c', 'echo ${word} >> ${h.log}']`;
  return compileRecipe(
    `
name: demo
description: reboot test
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  upgrade:
    - { id: before, type: exec, source: test, argv: ${append('before')} }
    - { id: reboot, type: reboot, source: test, timeout: 1s, ${reboot} }
    - { id: after, type: exec, source: test, argv: ${append('after')} }
`,
    'demo.yaml',
  );
}

const ran = (h: Host): string[] => (existsSync(h.log) ? readFileSync(h.log, 'utf8').trim().split('\n') : []);

function deps(h: Host, facts: Partial<RebootFacts> = {}, onReboot?: () => void): RunnerDeps {
  const real = hostRebootFacts({
    PATH: h.bin,
    CONVOY_BOOT_ID_FILE: h.bootFile,
    CONVOY_REBOOT_REQUIRED_FILE: h.flagFile,
  });
  return {
    registry: STEP_REGISTRY,
    journal: PhaseJournal.open(path.join(h.dir, 'state')),
    context: runnerContext({ stateDir: h.dir }),
    log: silentLogger,
    rebootFacts: { ...real, systemdRuns: () => false, ...facts },
    ...(onReboot === undefined ? {} : { onReboot }),
  };
}

const COMMAND = (h: Host): string => `command: ['/bin/sh', '-c', 'echo reboot-command >> ${h.log}']`;

describe('reboot step', () => {
  it('ifRequired without a reboot-required flag or needs-restarting does not reboot', async () => {
    const h = host();
    let announced = 0;
    const out = await runPhase(
      { recipe: recipe(h, `reboot: ifRequired, ${COMMAND(h)}`), phase: 'upgrade', roles: [], vars: {} },
      deps(h, {}, () => void announced++),
    );
    expect(out.ok).toBe(true);
    expect(out.steps[1]?.result?.outputTail).toContain('no reboot: no reboot-required flag');
    expect(ran(h)).toEqual(['before', 'after']);
    expect(announced).toBe(0);
  });

  it('ifRequired with needs-restarting -r exiting 0 does not reboot', async () => {
    const h = host();
    fakeNeedsRestarting(h, 0);
    const out = await runPhase(
      { recipe: recipe(h, `reboot: ifRequired, ${COMMAND(h)}`), phase: 'upgrade', roles: [], vars: {} },
      deps(h),
    );
    expect(out.ok).toBe(true);
    expect(ran(h)).toEqual(['before', 'needs-restarting -r', 'after']);
  });

  it.each([
    ['the reboot-required flag', (h: Host) => writeFileSync(h.flagFile, '*** System restart required ***\n')],
    ['needs-restarting -r exiting 1', (h: Host) => fakeNeedsRestarting(h, 1)],
  ])(
    'reboots on %s: journals the boot id, announces, runs the command; no new boot: REBOOT_DID_NOT_HAPPEN after the bound',
    async (_what, arrange) => {
      const h = host();
      arrange(h);
      const d = deps(h);
      let journaledAtAnnounce: unknown;
      const started = Date.now();
      const out = await runPhase(
        { recipe: recipe(h, `reboot: ifRequired, ${COMMAND(h)}`), phase: 'upgrade', roles: [], vars: {} },
        { ...d, onReboot: () => void (journaledAtAnnounce = d.journal.current?.reboot) },
      );
      expect(journaledAtAnnounce).toMatchObject({ stepId: 'reboot', bootId: 'boot-a' });
      expect(out.ok).toBe(false);
      expect(out.steps[1]?.result?.error?.code).toBe('REBOOT_DID_NOT_HAPPEN');
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(ran(h).filter((l) => l !== 'needs-restarting -r')).toEqual(['before', 'reboot-command']);
      // A failed reboot leaves no mark that a later run could take for a reboot in progress.
      expect(d.journal.current?.reboot).toBeUndefined();
    },
  );

  it('without a command on a host without systemd: REBOOT_COMMAND_MISSING, nothing journaled', async () => {
    const h = host();
    const d = deps(h);
    const out = await runPhase(
      { recipe: recipe(h, 'reboot: always'), phase: 'upgrade', roles: [], vars: {} },
      d,
    );
    expect(out.steps[1]?.result?.error?.code).toBe('REBOOT_COMMAND_MISSING');
    expect(ran(h)).toEqual(['before']);
  });

  it('resumes after the boot: a new boot id completes the step, the phase goes on, earlier steps are not run again', async () => {
    const h = host();
    const r = recipe(h, `reboot: always, ${COMMAND(h)}`);
    interruptedInReboot(h, Date.now());
    writeFileSync(h.bootFile, 'boot-b\n');
    const d = deps(h);
    const out = await runPhase({ recipe: r, phase: 'upgrade', roles: [], vars: {}, runId: 'run-1' }, d);
    expect(out.ok).toBe(true);
    expect(out.resumed).toMatchObject({ action: 'resume', stepId: 'reboot' });
    expect(out.steps.map((s) => [s.step.id, s.status])).toEqual([
      ['before', 'done-before'],
      ['reboot', 'ran'],
      ['after', 'ran'],
    ]);
    expect(out.steps[1]?.result?.outputTail).toBe('rebooted: boot boot-a -> boot-b\n');
    // Only the step after the reboot ran in this process; the command never ran a second time.
    expect(ran(h)).toEqual(['after']);
    expect(d.journal.current?.completed['reboot']?.data).toEqual({
      rebooted: true,
      fromBootId: 'boot-a',
      toBootId: 'boot-b',
    });
  });

  it('resumes on the same boot id past the bound: REBOOT_DID_NOT_HAPPEN, no second command', async () => {
    const h = host();
    interruptedInReboot(h, Date.now() - 5_000);
    const out = await runPhase(
      {
        recipe: recipe(h, `reboot: always, ${COMMAND(h)}`),
        phase: 'upgrade',
        roles: [],
        vars: {},
        runId: 'run-1',
      },
      deps(h),
    );
    expect(out.steps[1]?.result?.error?.code).toBe('REBOOT_DID_NOT_HAPPEN');
    expect(ran(h)).toEqual([]);
  });
});

/** The journal an agent leaves when a reboot took it down inside the step (run run-1). */
function interruptedInReboot(h: Host, atMs: number): void {
  const j = PhaseJournal.open(path.join(h.dir, 'state'));
  j.begin('run-1', 'demo', 'upgrade', false);
  j.leave('before', { ok: true, durationMs: 1, outputTail: '' });
  j.enter('reboot', 1, atMs);
  j.markReboot('reboot', 'boot-a', atMs);
}

function fakeNeedsRestarting(h: Host, code: number): void {
  mkdirSync(h.bin, { recursive: true });
  const file = path.join(h.bin, 'needs-restarting');
  writeFileSync(file, `#!/bin/sh\necho "needs-restarting $1" >> ${h.log}\nexit ${code}\n`);
  chmodSync(file, 0o755);
}
