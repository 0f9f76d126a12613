/**
 * `convoy-agent phase run` with a `reboot` step, as real processes: a reboot whose command writes
 * a new boot id and kills the agent (as a reboot does), then the same run started again after the
 * "boot"; and `ifRequired` on a host that needs no reboot. The boot id and the reboot-required
 * flag are files of the test (CONVOY_BOOT_ID_FILE, CONVOY_REBOOT_REQUIRED_FILE).
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT_BIN, Daemon, run, tempDir } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(30_000);

interface Local {
  readonly dir: string;
  readonly args: string[];
  readonly env: { CONVOY_BOOT_ID_FILE: string; CONVOY_REBOOT_REQUIRED_FILE: string };
}

function setUp(reboot: string): Local {
  const dir = tempDir('reboot-local');
  const log = path.join(dir, 'ran.log');
  const script = path.join(dir, 'reboot.sh');
  writeFileSync(
    script,
    `#!/bin/sh\necho reboot >> ${log}\ncat /proc/sys/kernel/random/uuid > ${dir}/boot_id\nkill -KILL $PPID\n`,
  );
  chmodSync(script, 0o755);
  writeFileSync(path.join(dir, 'boot_id'), 'first-boot\n');
  const file = path.join(dir, 'r.yaml');
  writeFileSync(
    file,
    `
name: rebooter
description: d
versions: { installed: { argv: [/bin/true], pattern: '(.*)' } }
phases:
  upgrade:
    - { id: install, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo install >> ${log}'] }
    - { id: reboot-now, type: reboot, ${reboot}, command: ['${script}'], timeout: 10s, source: test }
    - { id: activate, type: exec, source: test, argv: ['/bin/sh', '-c', 'echo activate >> ${log}'] }
`,
  );
  const args = [
    'phase',
    'run',
    '--recipe',
    file,
    '--phase',
    'upgrade',
    '--state-dir',
    path.join(dir, 'state'),
    '--run-id',
    'run-1',
  ];
  const env = {
    CONVOY_BOOT_ID_FILE: path.join(dir, 'boot_id'),
    CONVOY_REBOOT_REQUIRED_FILE: path.join(dir, 'reboot-required'),
  };
  return { dir, args, env };
}

/** A step of the `--json` outcome (agent/phase/runner.ts StepRecord). */
interface Step {
  step: { id: string };
  status: string;
  result?: { outputTail: string };
}

const ran = (dir: string): string[] =>
  existsSync(path.join(dir, 'ran.log'))
    ? readFileSync(path.join(dir, 'ran.log'), 'utf8').trim().split('\n')
    : [];

describe('convoy-agent phase run with a reboot step', () => {
  it('is killed by its reboot, and run again after the boot finishes the phase after the reboot step', async () => {
    const { dir, args, env } = setUp('reboot: always');
    const first = new Daemon(AGENT_BIN, args, env);
    await waitFor('the reboot to take the agent down', () => first.child.signalCode === 'SIGKILL', 20_000);
    expect(first.stdout).toContain('↻ rebooting the host');
    const journal = JSON.parse(readFileSync(path.join(dir, 'state', 'phase-journal.json'), 'utf8')) as {
      state: string;
      current: { stepId: string } | null;
      reboot?: { stepId: string; bootId: string };
    };
    expect(journal).toMatchObject({
      state: 'running',
      current: { stepId: 'reboot-now' },
      reboot: { stepId: 'reboot-now', bootId: 'first-boot' },
    });

    const again = run(AGENT_BIN, [...args, '--json'], env);
    expect(again.code).toBe(0);
    const out = JSON.parse(again.stdout) as {
      ok: boolean;
      resumed: { action: string; stepId: string };
      steps: Step[];
    };
    expect(out).toMatchObject({ ok: true, resumed: { action: 'resume', stepId: 'reboot-now' } });
    const newBoot = readFileSync(path.join(dir, 'boot_id'), 'utf8').trim();
    expect(out.steps.map((s) => [s.step.id, s.status])).toEqual([
      ['install', 'done-before'],
      ['reboot-now', 'ran'],
      ['activate', 'ran'],
    ]);
    expect(out.steps[1]?.result?.outputTail).toBe(`rebooted: boot first-boot -> ${newBoot}\n`);
    expect(ran(dir)).toEqual(['install', 'reboot', 'activate']);
  });

  it('ifRequired on a host without the reboot-required flag does not reboot', () => {
    const { dir, args, env } = setUp('reboot: ifRequired');
    const r = run(AGENT_BIN, [...args, '--json'], env);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; steps: Step[] };
    expect(out.ok).toBe(true);
    expect(out.steps[1]?.result?.outputTail).toContain('no reboot');
    expect(ran(dir)).toEqual(['install', 'activate']);
    expect(readFileSync(path.join(dir, 'boot_id'), 'utf8').trim()).toBe('first-boot');
  });

  it('ifRequired with the flag reboots', async () => {
    const { dir, args, env } = setUp('reboot: ifRequired');
    writeFileSync(env.CONVOY_REBOOT_REQUIRED_FILE, '*** System restart required ***\n');
    const first = new Daemon(AGENT_BIN, args, env);
    await waitFor('the reboot to take the agent down', () => first.child.signalCode === 'SIGKILL', 20_000);
    expect(ran(dir)).toEqual(['install', 'reboot']);
  });

  // The refusal needs a host without systemd; where systemd runs, `systemctl reboot` is the default.
  const withoutSystemd = existsSync('/run/systemd/system') ? it.skip : it;
  withoutSystemd('check refuses a reboot step without a command on a host without systemd', () => {
    const { dir, env } = setUp('reboot: always');
    const file = path.join(dir, 'bare.yaml');
    writeFileSync(file, readFileSync(path.join(dir, 'r.yaml'), 'utf8').replace(/command: \[[^\]]*\], /, ''));
    const r = run(
      AGENT_BIN,
      ['phase', 'run', '--recipe', file, '--phase', 'check', '--state-dir', path.join(dir, 's')],
      env,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('REBOOT_COMMAND_MISSING');
    expect(r.stderr).toContain('upgrade.reboot-now: systemd is not PID 1');
  });
});
