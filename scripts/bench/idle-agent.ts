/**
 * Memory of one idle agent: a real `convoy-agent run` process on the real disk, with default node
 * flags, beside a bare `node` process idling the same way for reference.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { BenchController } from './controller-proc';
import { CONVOY_AGENT } from './paths';
import { readRssBreakdown, readRssKb, runNode, sleep, waitForOutput, type RssBreakdown } from './proc';
import { stopChild, type Workspace } from './workspace';

/** How long a process sits idle after start-up before its RSS is read (docs/benchmarks.md, step 6). */
const IDLE_MS = 3000;

/** The median reading, with the lowest and highest of the five. */
export interface IdleAgentRss extends RssBreakdown {
  readonly minKb: number;
  readonly maxKb: number;
}

/** Enrolls one more agent with the CLI and runs it as its own `convoy-agent run` process. */
export async function idleAgentRss(ws: Workspace, controller: BenchController): Promise<IdleAgentRss> {
  const stateDir = path.join(ws.root, 'idle-agent');
  await enrollIdleAgent(controller, stateDir);
  const child = await runIdleAgent(ws, stateDir);
  await sleep(IDLE_MS);
  // A garbage collection can move one reading by a few MB: take five, 200 ms apart, keep the median.
  const samples: RssBreakdown[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(200);
    samples.push(readRssBreakdown(child.pid ?? -1));
  }
  samples.sort((a, b) => a.rssKb - b.rssKb);
  const mid = samples[2] ?? samples[0];
  if (mid === undefined) throw new Error('no RSS sample of the idle agent');
  return { ...mid, minKb: samples[0]?.rssKb ?? mid.rssKb, maxKb: samples[4]?.rssKb ?? mid.rssKb };
}

async function enrollIdleAgent(controller: BenchController, stateDir: string): Promise<void> {
  const enrolled = await runNode(CONVOY_AGENT, [
    'enroll',
    '--controller',
    controller.address,
    '--token-file',
    controller.tokenFile,
    '--controller-key',
    controller.key,
    '--state-dir',
    stateDir,
    '--hostname',
    'bench-idle',
  ]);
  if (enrolled.code !== 0) throw new Error(`convoy-agent enroll: ${enrolled.stderr.trim()}`);
}

/** Starts `convoy-agent run` and waits until it logs that it is connected. */
async function runIdleAgent(ws: Workspace, stateDir: string): Promise<ChildProcess> {
  const child = ws.track(
    spawn(process.execPath, [CONVOY_AGENT, 'run', '--state-dir', stateDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  await waitForOutput(child, child.stderr, {
    match: (err) => (err.includes('"connected to controller"') ? true : undefined),
    timeoutMs: 30_000,
    onTimeout: (err) => new Error(`idle agent not online in 30 s: ${err}`),
    onExit: (code, err) => new Error(`idle agent exited (${code}): ${err}`),
  });
  return child;
}

/** RSS of a bare `node` process, for reference: the floor any Node agent starts from. */
export async function bareNodeRssKb(ws: Workspace): Promise<number> {
  const child = ws.track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }));
  await sleep(IDLE_MS);
  const kb = readRssKb(child.pid ?? -1);
  await stopChild(child);
  return kb;
}
