/**
 * The README's first command: `npm run demo` must run a full rollout and end with one JSON line
 * that says so. This runs the compiled demo exactly as the README does (after the build).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

jest.setTimeout(240_000);

const DEMO = path.resolve(__dirname, '../../dist/scripts/demo.js');

interface Summary {
  rollout: string;
  hosts: { host: string; role: string; state: string; installed: string | null }[];
  finalizeCalls: number;
  stagedBeforeWindow: boolean;
  downtimeMs: Record<string, number>;
}

function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('rolls a 3-host BlueMind-like deployment to 4.1.2: staged before the window, /setup once, every host verified', async () => {
  const { code, stdout, stderr } = await runDemo();
  const lines = stdout.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  const summary = JSON.parse(last) as Summary;
  expect(summary.rollout).toBe('succeeded');
  expect(summary.finalizeCalls).toBe(1);
  expect(summary.stagedBeforeWindow).toBe(true);
  expect(summary.hosts).toHaveLength(3);
  for (const h of summary.hosts) expect(h).toMatchObject({ state: 'verified', installed: '4.1.2' });
  expect(summary.hosts.filter((h) => h.role === 'core')).toHaveLength(1);
  // Downtime is the fake service's maintenance span: dpkg applying bm-core (300 ms of postinst),
  // never the download, which happened at 02:00.
  for (const ms of Object.values(summary.downtimeMs)) {
    expect(ms).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(5_000);
  }
  // The live display shows the progress; the summary table shows every host.
  expect(stdout).toMatch(/rollout r-[0-9a-f]+: mail-prod to 4\.1\.2 — succeeded/);
});
