/**
 * The simulated fleet: N agents spread over S forked swarm processes (./agent-swarm), started
 * together and followed over IPC until the controller shows every agent online.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { waitAllOnline, type BenchController } from './controller-proc';
import type { Options } from './options';
import { SWARM } from './paths';
import { round1 } from './proc';
import { isFromSwarm, type SwarmReady, type SwarmStart } from './protocol';
import { note, type Workspace } from './workspace';

interface SwarmProc {
  readonly child: ChildProcess;
  readonly ready: Promise<SwarmReady>;
  enrolled: number;
  online: number;
}

/** The connected fleet, as the measurements need it. */
export interface Fleet {
  readonly hostIds: readonly string[];
  /** For the CPU time the simulation uses per round. */
  readonly swarmPids: readonly number[];
  /** Sum of the swarm processes' own RSS once their agents were online, kB. */
  readonly swarmRssKb: number;
  /** From forking the swarms to the controller showing every agent online, ms. */
  readonly connectMs: number;
}

/** Enrolls and connects `opts.agents` agents across `opts.swarms` processes. */
export async function connectFleet(
  ws: Workspace,
  opts: Options,
  controller: BenchController,
  agentRoot: string,
): Promise<Fleet> {
  const connectStart = Date.now();
  const swarms = agentsPerSwarm(opts.agents, opts.swarms).map((count, swarm) =>
    startSwarm(
      ws,
      {
        type: 'start',
        swarm,
        count,
        controller: controller.address,
        controllerKey: controller.key,
        token: controller.token,
        stateRoot: agentRoot,
        enrollConcurrency: Math.max(1, Math.ceil(opts.enrollConcurrency / opts.swarms)),
      },
      opts.swarmNice,
    ),
  );
  const ready = await whileReportingProgress(swarms, opts.agents, () =>
    Promise.all(swarms.map((s) => s.ready)),
  );
  const hostIds = ready.flatMap((r) => r.hostIds);
  await waitAllOnline(controller.stateDir, hostIds, 60_000);
  const connectMs = Date.now() - connectStart;
  note(`${hostIds.length} agents enrolled and online in ${round1(connectMs / 1000)} s`);
  return {
    hostIds,
    swarmPids: swarms.map((s) => s.child.pid ?? -1),
    swarmRssKb: ready.reduce((a, r) => a + r.rssKb, 0),
    connectMs,
  };
}

/** `agents` split as evenly as possible; the first swarms take one more when it does not divide. */
function agentsPerSwarm(agents: number, swarms: number): number[] {
  const perSwarm = Math.floor(agents / swarms);
  return Array.from({ length: swarms }, (_, s) => perSwarm + (s < agents % swarms ? 1 : 0));
}

/** Notes the fleet's enrolled and online counts every 3 s until `wait` settles. */
async function whileReportingProgress<T>(
  swarms: readonly SwarmProc[],
  agents: number,
  wait: () => Promise<T>,
): Promise<T> {
  const progress = setInterval(() => {
    const enrolled = swarms.reduce((a, s) => a + s.enrolled, 0);
    const online = swarms.reduce((a, s) => a + s.online, 0);
    note(`enrolled ${enrolled}/${agents}, online ${online}/${agents}`);
  }, 3000);
  try {
    return await wait();
  } finally {
    clearInterval(progress);
  }
}

/** Forks one swarm and sends it its share; `ready` rejects if the swarm reports an error or exits. */
function startSwarm(ws: Workspace, start: SwarmStart, nice: number): SwarmProc {
  const child = ws.withLogFile('swarms.log', (log) =>
    ws.track(fork(SWARM, [], { stdio: ['ignore', log, log, 'ipc'] })),
  );
  if (child.pid !== undefined && nice > 0) os.setPriority(child.pid, nice);
  const proc: SwarmProc = {
    child,
    enrolled: 0,
    online: 0,
    ready: new Promise((resolve, reject) => {
      child.on('message', (msg: unknown) => {
        if (!isFromSwarm(msg)) return;
        if (msg.type === 'progress') {
          proc.enrolled = msg.enrolled;
          proc.online = msg.online;
        } else if (msg.type === 'ready') {
          proc.enrolled = msg.hostIds.length;
          proc.online = msg.hostIds.length;
          resolve(msg);
        } else {
          reject(new Error(`swarm ${start.swarm}: ${msg.message}`));
        }
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`swarm ${start.swarm} exited (${code ?? signal}):\n${ws.tail('swarms.log')}`)),
      );
    }),
  };
  child.send(start);
  return proc;
}
