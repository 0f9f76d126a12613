/**
 * The simulated fleet of the rollout benchmark: N simulated agents (./sim-agent) over a few
 * forked swarm processes (./sim-swarm), followed until the controller shows every one online.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitAllOnline, type BenchController } from './controller-proc';
import { round1 } from './proc';
import { isFromSwarm, type SwarmReady, type SwarmStart } from './protocol';
import { isStepsAnswer, type StepsQuery } from './sim-agent';
import { note, type Workspace } from './workspace';

const SIM_SWARM = path.join(__dirname, 'sim-swarm.js');

export interface SimFleet {
  readonly hostIds: readonly string[];
  readonly swarmPids: readonly number[];
  /** From forking the swarms to the controller showing every agent online, ms. */
  readonly connectMs: number;
  /** Steps every simulated agent has reported as run so far, summed. */
  stepsRun(): Promise<number>;
}

export async function connectSimFleet(
  ws: Workspace,
  controller: BenchController,
  opts: { agents: number; swarms: number; enrollConcurrency: number; stateRoot: string },
): Promise<SimFleet> {
  const started = Date.now();
  const swarms = Math.max(1, Math.min(opts.swarms, opts.agents));
  const children: ChildProcess[] = [];
  const ready = await Promise.all(
    Array.from({ length: swarms }, (_, swarm) => {
      const count = Math.floor(opts.agents / swarms) + (swarm < opts.agents % swarms ? 1 : 0);
      const child = ws.withLogFile('sim-swarms.log', (log) =>
        ws.track(fork(SIM_SWARM, [], { stdio: ['ignore', log, log, 'ipc'] })),
      );
      children.push(child);
      return startSwarm(ws, child, {
        type: 'start',
        swarm,
        count,
        controller: controller.address,
        controllerKey: controller.key,
        token: controller.token,
        stateRoot: opts.stateRoot,
        enrollConcurrency: Math.max(1, Math.ceil(opts.enrollConcurrency / swarms)),
      });
    }),
  );
  const hostIds = ready.flatMap((r) => r.hostIds);
  await waitAllOnline(controller.stateDir, hostIds, 60_000);
  const connectMs = Date.now() - started;
  note(`${hostIds.length} simulated agents enrolled and online in ${round1(connectMs / 1000)} s`);
  return {
    hostIds,
    swarmPids: children.map((c) => c.pid ?? -1),
    connectMs,
    stepsRun: async () => (await Promise.all(children.map(askSteps))).reduce((a, b) => a + b, 0),
  };
}

function startSwarm(ws: Workspace, child: ChildProcess, start: SwarmStart): Promise<SwarmReady> {
  return new Promise((resolve, reject) => {
    child.on('message', (msg: unknown) => {
      if (!isFromSwarm(msg)) return;
      if (msg.type === 'ready') resolve(msg);
      else if (msg.type === 'error') reject(new Error(`simulated swarm ${start.swarm}: ${msg.message}`));
    });
    child.once('exit', (code, signal) =>
      reject(
        new Error(`simulated swarm ${start.swarm} exited (${code ?? signal}):\n${ws.tail('sim-swarms.log')}`),
      ),
    );
    child.send(start);
  });
}

function askSteps(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a simulated swarm did not report its steps')), 5000);
    const onMessage = (msg: unknown): void => {
      if (!isStepsAnswer(msg)) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(msg.stepsRun);
    };
    child.on('message', onMessage);
    child.send({ type: 'steps?' } satisfies StepsQuery);
  });
}
