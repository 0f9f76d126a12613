/**
 * One benchmark swarm process: enrolls K agents (each with its own state directory, key and
 * journal) and runs them side by side in this process. Forked by `fanout.ts`; talks to it over
 * IPC only (see ./protocol).
 *
 * Each agent gets `grpc.use_local_subchannel_pool`, so it opens its own HTTP/2 connection as an
 * agent on its own host would; without it grpc-js would multiplex every agent of this process
 * over one shared connection and the controller's per-agent cost would be under-counted.
 */
import path from 'node:path';
import { Agent } from '../../agent/agent';
import { CONFIG_FILE, loadAgentConfig } from '../../agent/config';
import { enrollAgent } from '../../agent/enroll';
import { readAgentKey } from '../../agent/identity';
import { createLogger, type Logger, type LogLevel } from '../../shared/logger';
import { isToSwarm, type FromSwarm, type SwarmStart } from './protocol';
import { mapLimit, readRssKb } from './proc';

const agents: Agent[] = [];
let stopping = false;

function send(msg: FromSwarm): void {
  process.send?.(msg);
}

async function runSwarm(start: SwarmStart, swarmLog: Logger): Promise<void> {
  const started = Date.now();
  const log = start.agentLogLevel === undefined ? swarmLog : createSwarmLogger(start.agentLogLevel);
  let enrolled = 0;
  let online = 0;
  let lastReport = 0;
  const report = (force = false): void => {
    if (!force && Date.now() - lastReport < 500) return;
    lastReport = Date.now();
    send({ type: 'progress', enrolled, online });
  };
  const indexes = Array.from({ length: start.count }, (_, i) => i);
  const hostIds = await mapLimit(indexes, start.enrollConcurrency, async (i) => {
    const name = `bench-s${start.swarm}-a${i}`;
    const stateDir = path.join(start.stateRoot, name);
    const res = await enrollAgent({
      controller: start.controller,
      token: start.token,
      controllerKey: start.controllerKey,
      stateDir,
      hostname: name,
      timeoutMs: 60_000,
    });
    enrolled += 1;
    report();
    if (stopping) return res.hostId;
    const config = loadAgentConfig(path.join(stateDir, CONFIG_FILE));
    const agent = new Agent(config, readAgentKey(config.stateDir), {
      log: log.child({ hostId: res.hostId }),
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    });
    agents.push(agent);
    agent.start();
    // Not awaited here: the next enrollment need not wait for this agent's handshake.
    void agent.waitOnline().then(() => {
      online += 1;
      report();
    });
    return res.hostId;
  });
  await Promise.all(agents.map((a) => a.waitOnline()));
  report(true);
  send({ type: 'ready', hostIds, rssKb: readRssKb(process.pid), elapsedMs: Date.now() - started });
}

async function stopAll(): Promise<void> {
  stopping = true;
  await Promise.allSettled(agents.map((a) => a.stop()));
}

function createSwarmLogger(level: LogLevel): Logger {
  return createLogger(
    { sink: (line) => process.stderr.write(line), level, now: Date.now },
    { component: 'bench-swarm', pid: process.pid },
  );
}

function main(): void {
  // Agents log warnings and errors only: 250 "connected" lines per swarm would be noise.
  const log = createSwarmLogger('warn');
  // The parent going away (crash, hard timeout) must not leave a swarm behind.
  process.on('disconnect', () => process.exit(1));
  process.on('message', (msg: unknown) => {
    if (!isToSwarm(msg)) return;
    if (msg.type === 'start') {
      runSwarm(msg, log).catch((err: unknown) => {
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      });
    } else {
      void stopAll().finally(() => process.exit(0));
    }
  });
}

main();
