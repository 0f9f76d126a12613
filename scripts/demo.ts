/**
 * The embedded default: a full BlueMind-like rollout on a local demo fleet.
 *
 * Three fake hosts (an agent process each, an isolated apt root, a local package repository, and
 * a small fake BlueMind web service with maintenance mode, `/setup` and a health page), one
 * controller on SQLite. The controller's scheduler clock starts at 01:59 (Europe/Paris) and warps
 * over idle time, so the off-hours staging at 02:00 and the 03:00 window happen in seconds:
 * packages are pre-downloaded at 02:00 with no downtime, then at 03:00 the hosts upgrade canary
 * first, BlueMind's `/setup` runs once on the core host, and every host is verified.
 *
 * The last line is one JSON object: rollout (final state), hosts, finalizeCalls,
 * stagedBeforeWindow and downtimeMs (per host, measured by the fake service).
 */
import { spawn } from 'node:child_process';
import type { RolloutView } from '../controller/rollout/view';
import type { EventView } from '../controller/store/events';
import { BlueMindFleet, CONVOY_JS } from './fixtures/bluemind-fleet';

interface Args {
  keep: boolean;
  dir: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { keep: false, dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--keep') args.keep = true;
    else if (a === '--state-dir') args.dir = argv[++i];
    else if (a === '--help') {
      process.stdout.write('usage: npm run demo [-- --keep] [-- --state-dir DIR]\n');
      process.exit(0);
    } else {
      process.stderr.write(`demo: unknown argument ${a ?? ''}\n`);
      process.exit(2);
    }
  }
  return args;
}

function step(text: string): void {
  process.stdout.write(`\n==> ${text}\n`);
}

/** `convoy rollout watch`, its output shown as it comes (a live bar on a terminal). */
function watch(fleet: BlueMindFleet, id: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [CONVOY_JS, 'rollout', 'watch', id, '--state-dir', fleet.stateDir],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    child.once('exit', (code) => resolve(code));
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  step(
    'building 3 fake BlueMind hosts (apt roots, package repositories, fake web services) and a controller',
  );
  const fleet = await BlueMindFleet.create({
    hosts: 3,
    ...(args.dir === undefined ? {} : { dir: args.dir }),
    controllerArgs: ['--clock-start', '2026-12-01T01:59:00+01:00', '--clock-warp'],
    log: (line) => process.stdout.write(`${line}\n`),
  });
  try {
    step('convoy status');
    process.stdout.write(await fleet.cliOk('status'));

    step('convoy apply fleet.yaml (staging 02:00, window 03:00-05:00 Europe/Paris, canary then 2 at a time)');
    const file = fleet.writeFleet(fleet.fleetYaml());
    process.stdout.write(await fleet.cliOk('apply', file));

    step("convoy rollout plan mail-prod --to latest (runs every host's check; changes nothing)");
    process.stdout.write(await fleet.cliOk('rollout', 'plan', 'mail-prod', '--to', 'latest'));

    step('convoy rollout start mail-prod --to latest');
    const id = (await fleet.cliOk('rollout', 'start', 'mail-prod', '--to', 'latest')).trim();
    process.stdout.write(`${id}\n`);

    step(`convoy rollout watch ${id}`);
    await watch(fleet, id);

    step('convoy status');
    process.stdout.write(await fleet.cliOk('status'));

    step(`convoy events --rollout ${id} (the last 12)`);
    process.stdout.write(await fleet.cliOk('events', '--rollout', id, '--limit', '12'));

    const doc = await fleet.cliJson<RolloutView>('rollout', 'status', id);
    const events = await fleet.cliJson<EventView[]>('events', '--rollout', id, '--limit', '100000');
    const windowOpened = events.find((e) => e.kind === 'rollout.upgrading')?.id ?? Number.POSITIVE_INFINITY;
    const stagedEvents = events.filter((e) => e.kind === 'rollout.host.staging.ok');
    const stagedBeforeWindow =
      stagedEvents.length === fleet.hosts.length &&
      stagedEvents.every((e) => e.id < windowOpened) &&
      doc.stagedAt !== null &&
      doc.windowOpenedAt !== null &&
      doc.stagedAt <= doc.windowOpenedAt;
    const hosts = await Promise.all(
      fleet.hosts.map(async (h) => {
        const spans = h.bluemind.state().maintenanceSpans;
        return {
          host: h.name,
          id: h.hostId,
          role: h.role,
          state: doc.hosts.find((x) => x.hostId === h.hostId)?.state ?? 'unknown',
          installed: (await h.apt.installedVersion('bm-core')) ?? null,
          downtimeMs: spans.reduce((sum, s) => sum + ((s.off ?? Date.now()) - s.on), 0),
        };
      }),
    );
    const summary = {
      demo: doc.state === 'succeeded' ? 'ok' : 'failed',
      rollout: doc.state,
      rolloutId: id,
      hosts: hosts.map(({ host, id: hostId, role, state, installed }) => ({
        host,
        id: hostId,
        role,
        state,
        installed,
      })),
      finalizeCalls: fleet.setupCalls(),
      stagedBeforeWindow,
      downtimeMs: Object.fromEntries(hosts.map((h) => [h.host, h.downtimeMs])),
    };
    if (args.keep) {
      step(`leaving it running: convoy status --state-dir ${fleet.stateDir}  (Ctrl-C stops everything)`);
      process.stdout.write(JSON.stringify(summary) + '\n');
      await new Promise(() => undefined);
    }
    if (doc.state !== 'succeeded') process.exitCode = 1;
    process.stdout.write(JSON.stringify(summary) + '\n');
  } finally {
    if (!args.keep) await fleet.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
