/**
 * ownCloud's system update asks for a reboot (seed 004 "System Update"; issue 13 §4): the
 * recipe's `reboot-if-needed` step reboots the host between the system update and the ownCloud
 * upgrade, and the upgrade goes on after the boot. A real `convoy-agent phase run` on the sweep's
 * fake ownCloud host; its "reboot" command writes a new boot id and kills the agent (the machine
 * going down), and the phase is sent again with the same run id, as a controller does when the
 * host is back. Then the host is on the new version, healthy, every step once.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runAgentPhase } from '../chaos/agent-sweep/agent-phase';
import { owncloudHost } from '../chaos/agent-sweep/app-hosts';
import { readJournal } from '../chaos/agent-sweep/driver';
import type { PlannedRun } from '../chaos/agent-sweep/cases';
import type { SweepHost } from '../chaos/agent-sweep/sweep-host';
import { logLines } from '../helpers/fake-apps';
import { describeWithTools } from '../helpers/require-tool';

const run = (phase: PlannedRun['phase'], k: string): PlannedRun => ({
  phase,
  runId: `reboot-${k}`,
  readRuns: ['reboot-s', 'reboot-u'].filter((id) => id !== `reboot-${k}`),
  onFailure: 'rollback',
});

describeWithTools('ownCloud system update with a reboot', ['apt-get', 'dpkg-deb', 'curl', 'bzip2'])(
  'ownCloud',
  () => {
    let host: SweepHost;
    beforeAll(async () => {
      host = await owncloudHost();
    }, 120_000);
    afterAll(async () => {
      await host?.cleanup();
    });

    it('reboots after the system update when the host asks for it, and the upgrade goes on after the boot', async () => {
      const env = host.agent.env as Record<string, string>;
      const bootIdFile = env['CONVOY_BOOT_ID_FILE'] ?? '';
      const flag = env['CONVOY_REBOOT_REQUIRED_FILE'] ?? '';
      const base = path.dirname(bootIdFile);
      // The "reboot": a new boot id, the flag gone (as after a real boot), and the agent killed.
      const reboot = path.join(base, 'fake-reboot');
      writeFileSync(
        reboot,
        `#!/bin/sh\necho rebooted >> '${base}/reboots'\nprintf 'boot-2\\n' > '${bootIdFile}'\nrm -f '${flag}'\nkill -9 $PPID\n`,
      );
      chmodSync(reboot, 0o755);
      const agent = { ...host.agent, vars: { ...host.agent.vars, rebootCommand: reboot } };

      const download = await runAgentPhase(agent, run('download', 's'));
      expect(download.code).toBe(0);
      // The system update installed something that asks for a reboot.
      writeFileSync(flag, '*** System restart required ***\n');

      const first = await runAgentPhase(agent, run('upgrade', 'u'));
      expect(first.signal).toBe('SIGKILL');
      // The journal recorded the reboot before the command ran: the step, from boot-1.
      const atCrash = readJournal(agent.stateDir);
      expect(atCrash?.current?.stepId).toBe('reboot-if-needed');
      expect(atCrash?.reboot).toMatchObject({ stepId: 'reboot-if-needed', bootId: 'boot-1' });
      // Nothing of the ownCloud upgrade ran before the reboot.
      expect(logLines(ocLog(agent.vars)).filter((l) => !l.startsWith('status'))).toEqual([]);

      const again = await runAgentPhase(agent, run('upgrade', 'u'));
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('resumed: interrupted inside reboot-if-needed (reboot)');
      // The step completed in the agent after the boot, on the new boot id; the journal keeps both.
      const done = readJournal(agent.stateDir)?.completed['reboot-if-needed'];
      expect(done).toMatchObject({
        ok: true,
        data: { rebooted: true, fromBootId: 'boot-1', toBootId: 'boot-2' },
      });
      expect(readFileSync(path.join(base, 'reboots'), 'utf8')).toBe('rebooted\n');
      expect(existsSync(flag)).toBe(false);

      expect((await runAgentPhase(agent, run('verify', 'u'))).code).toBe(0);
      expect(await host.observe()).toEqual({
        version: host.to,
        healthy: true,
        maintenance: false,
        problems: [],
        ranTwice: [],
      });
    }, 180_000);
  },
);

/** The fake instance's occ log (test/helpers/fake-apps.ts), under its ocDir. */
function ocLog(vars: Readonly<Record<string, string>>): string {
  return path.join(path.dirname(vars['ocDir'] ?? ''), 'state', 'occ.log');
}
