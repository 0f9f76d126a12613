/**
 * `npm run bench`: figures for the fleet-scale targets, measured on real processes.
 *
 *   - ping fan-out round trip to N connected agents (p50, p99; target p99 < 500 ms)
 *   - controller memory per connected agent (VmRSS delta / N; target < 100 KB)
 *   - one idle agent process (VmRSS; target < 60 MB)
 *
 * and the rollout figures (docs/benchmarks.md, "Rollouts"):
 *
 *   - downtime of a 100 MB upgrade with staging / without (target <= 0.2), and staged / bare
 *     apply (target <= 1.2), on BlueMind-like fleets (./downtime)
 *   - orchestration overhead per host-step of a no-op rollout to 200 simulated hosts (target
 *     <= 5 ms; ./rollout-sim)
 *
 * and the enrollment figures (docs/benchmarks.md, "Enrollment over SSH and self-update"; ./enroll):
 * the agent bundle's size and build time, `convoy hosts enroll --ssh` of N hosts at once and again,
 * the bundled agents' idle memory, and their self-update in one rollout.
 *
 * The controller is `convoy controller start` in its own process; the N agents run in a few swarm
 * processes (./agent-swarm), each agent with its own key, state directory and HTTP/2 connection;
 * the idle agent is a real `convoy-agent run` process. Everything is driven through the CLIs an
 * operator would use. Each part runs alone, its processes gone before the next starts. The last
 * line printed is one JSON object with every figure.
 *
 * Usage: see USAGE in ./options and ./rollout-options; docs/benchmarks.md explains each figure.
 */
import { setUpController } from './controller-proc';
import { benchDowntime, type DowntimeResult } from './downtime';
import { benchEnroll, type EnrollResult } from './enroll';
import { enrollFiguresOf, printEnrollFigures, withEnrollFigures } from './enroll-report';
import { bareNodeRssKb, idleAgentRss } from './idle-agent';
import { parseOptions, USAGE, type Options } from './options';
import { runPingRounds, summarizeRounds } from './ping-rounds';
import { fdatasyncLatencyMs, fsType, readRssKb, round1, sleep } from './proc';
import { figuresOf, printFigures, type Figures } from './report';
import { ROLLOUT_USAGE, splitRolloutOptions, type RolloutBenchOptions } from './rollout-options';
import { joinFigures, printRolloutFigures, rolloutFiguresOf } from './rollout-report';
import { benchRolloutSim, type RolloutSimResult } from './rollout-sim';
import { connectFleet } from './swarms';
import { Teardown, tearDownOnTimeoutOrSignal } from './teardown';
import { note, Workspace } from './workspace';

const SETTLE_MS = 2000;

/** The controller's VmRSS after SETTLE_MS of quiet: nothing is forced, and there is no GC call. */
async function settledRssKb(pid: number): Promise<number> {
  await sleep(SETTLE_MS);
  return readRssKb(pid);
}

/** Runs every step in order (docs/benchmarks.md, "What runs") and prints the readable figures. */
async function bench(opts: Options, ws: Workspace): Promise<Figures> {
  const agentRoot = ws.tempDir(opts.agentStateRoot);
  const agentStateFs = fsType(agentRoot);
  note(`simulated agents' state under ${agentRoot} (${agentStateFs})`);
  note(`workspace ${ws.root}`);

  const controller = await setUpController(ws, opts);
  const baselineKb = await settledRssKb(controller.pid);
  note(`controller baseline RSS ${round1(baselineKb / 1024)} MB`);

  const fleet = await connectFleet(ws, opts, controller, agentRoot);
  const loadedKb = await settledRssKb(controller.pid);
  note(`controller RSS with ${opts.agents} agents ${round1(loadedKb / 1024)} MB`);

  // Warm-up rounds first, then the measured ones.
  const rounds = await runPingRounds(opts, controller, fleet.swarmPids);
  const afterFanoutKb = readRssKb(controller.pid);

  note('idle agent: enrolling and running one convoy-agent process');
  const idleAgent = await idleAgentRss(ws, controller);
  const bareNodeKb = await bareNodeRssKb(ws);
  // One host's durable journal append on this machine's disk (where the idle agent lives).
  const fsyncMs = fdatasyncLatencyMs(ws.root);

  const figures = figuresOf({
    opts,
    connectMs: fleet.connectMs,
    controllerRss: { baselineKb, loadedKb, afterFanoutKb },
    swarmRssKb: fleet.swarmRssKb,
    rounds,
    fanout: summarizeRounds(rounds),
    idleAgent,
    bareNodeKb,
    fsyncMs,
    agentStateFs,
    diskFs: fsType(ws.root),
  });
  printFigures(figures);
  return figures;
}

/** Runs one part in a workspace of its own, torn down before the next part starts. */
async function inWorkspace<T>(teardown: Teardown, part: (ws: Workspace) => Promise<T>): Promise<T> {
  const ws = new Workspace();
  teardown.add(() => ws.cleanup());
  try {
    return await part(ws);
  } catch (err) {
    for (const log of ['controller.log', 'swarms.log', 'sim-swarms.log'])
      note(`${log} (workspace ${ws.root}):\n${ws.tail(log)}`);
    throw err;
  } finally {
    await ws.cleanup();
  }
}

async function main(): Promise<void> {
  let opts: Options;
  let more: RolloutBenchOptions;
  try {
    const split = splitRolloutOptions(process.argv.slice(2));
    more = split.options;
    opts = parseOptions(split.rest);
  } catch (err) {
    process.stderr.write(
      `bench: ${err instanceof Error ? err.message : String(err)}\n${USAGE}${ROLLOUT_USAGE}`,
    );
    process.exitCode = 2;
    return;
  }
  const teardown = new Teardown();
  const disarm = tearDownOnTimeoutOrSignal(teardown, opts.timeoutMinutes);
  try {
    const parts = more.parts;
    let figures: Figures | undefined;
    let downtime: DowntimeResult | undefined;
    let rollout: RolloutSimResult | undefined;
    let enroll: EnrollResult | undefined;
    if (parts.includes('fanout')) figures = await inWorkspace(teardown, (ws) => bench(opts, ws));
    if (parts.includes('downtime'))
      downtime = await inWorkspace(teardown, (ws) =>
        benchDowntime(
          ws,
          {
            hosts: more.downtimeHosts,
            payloadBytes: more.payloadMb * 1_000_000,
            bytesPerSecond: more.repoMbPerSecond * 1_000_000,
            applyMs: more.applyMs,
          },
          teardown,
        ),
      );
    if (parts.includes('rollout'))
      rollout = await inWorkspace(teardown, (ws) =>
        benchRolloutSim(ws, opts, { hosts: more.rolloutHosts, concurrency: more.rolloutConcurrency }),
      );
    if (parts.includes('enroll'))
      enroll = await inWorkspace(teardown, (ws) => benchEnroll(ws, { hosts: opts.enrollHosts }, teardown));
    const rolloutFigures = rolloutFiguresOf(more, downtime, rollout);
    printRolloutFigures(more, rolloutFigures);
    const enrollFigures = enroll === undefined ? undefined : enrollFiguresOf(enroll);
    if (enrollFigures !== undefined) printEnrollFigures(enrollFigures);
    const joined = joinFigures(figures, withEnrollFigures(rolloutFigures, enrollFigures));
    process.stdout.write(JSON.stringify(joined) + '\n');
    // Figures that miss a target still exit 0; a ping that failed makes the run itself suspect.
    if (figures !== undefined && figures.fanout_failures > 0) process.exitCode = 1;
  } catch (err) {
    note(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await teardown.run();
    disarm();
  }
}

void main();
