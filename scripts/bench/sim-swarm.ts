/**
 * One swarm process of simulated agents for the rollout benchmark (./sim-agent): enrolls K
 * agents, each with its own state directory, key, journal and HTTP/2 connection, and runs them
 * side by side. Forked by ./rollout-sim; speaks the IPC messages of ./protocol, as the fan-out
 * swarm (./agent-swarm) does.
 */
import path from 'node:path';
import { CONFIG_FILE, loadAgentConfig } from '../../agent/config';
import { enrollAgent } from '../../agent/enroll';
import { readAgentKey } from '../../agent/identity';
import { createLogger, type Logger } from '../../shared/logger';
import { mapLimit, readRssKb } from './proc';
import { isToSwarm, type FromSwarm, type SwarmStart } from './protocol';
import { isStepsQuery, SimAgent, type StepsAnswer } from './sim-agent';

const agents: SimAgent[] = [];

function send(msg: FromSwarm): void {
  process.send?.(msg);
}

async function runSwarm(start: SwarmStart, log: Logger): Promise<void> {
  const started = Date.now();
  const indexes = Array.from({ length: start.count }, (_, i) => i);
  const hostIds = await mapLimit(indexes, start.enrollConcurrency, async (i) => {
    const name = `sim-s${start.swarm}-a${i}`;
    const stateDir = path.join(start.stateRoot, name);
    const res = await enrollAgent({
      controller: start.controller,
      token: start.token,
      controllerKey: start.controllerKey,
      stateDir,
      hostname: name,
      timeoutMs: 60_000,
    });
    const config = loadAgentConfig(path.join(stateDir, CONFIG_FILE));
    const agent = new SimAgent(config, readAgentKey(config.stateDir), log.child({ hostId: res.hostId }));
    agents.push(agent);
    agent.start();
    return res.hostId;
  });
  await Promise.all(agents.map((a) => a.waitOnline()));
  send({ type: 'ready', hostIds, rssKb: readRssKb(process.pid), elapsedMs: Date.now() - started });
}

function main(): void {
  const log = createLogger(
    { sink: (line) => process.stderr.write(line), level: 'warn', now: Date.now },
    { component: 'bench-sim-swarm', pid: process.pid },
  );
  process.on('disconnect', () => process.exit(1));
  process.on('message', (msg: unknown) => {
    if (isStepsQuery(msg)) {
      const stepsRun = agents.reduce((sum, a) => sum + a.stepsRun, 0);
      process.send?.({ type: 'steps', stepsRun } satisfies StepsAnswer);
      return;
    }
    if (!isToSwarm(msg)) return;
    if (msg.type === 'start') {
      runSwarm(msg, log).catch((err: unknown) => {
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      });
      return;
    }
    for (const a of agents) a.stop();
    process.exit(0);
  });
}

main();
