/**
 * What a verified command does. Only the types listed here run; anything else is refused, so a
 * controller cannot make the agent do what it was not built to do.
 */
import { CONVOY_VERSION } from '../shared/version';
import type { CommandContext, CommandHandler, ProgressReporter } from './command-context';
import { phaseJournalSummary } from './phase/summary';

/** `phase` runs a recipe phase; its code (compiler, step executors) is loaded on first use only. */
const phase: CommandHandler = Object.assign(
  async (body: Readonly<Record<string, unknown>>, ctx: CommandContext, progress: ProgressReporter) => {
    const { runRemotePhase } = await import('./phase/remote');
    return runRemotePhase(body, ctx, progress);
  },
  { background: true },
);

export const COMMAND_HANDLERS: Readonly<Record<string, CommandHandler>> = Object.freeze({
  /** A no-op that proves the signed round trip works. */
  ping: async (_body, ctx) => ({ pong: true, agentTimeMs: ctx.now() }),
  /** The agent's own view of itself. */
  status: async (_body, ctx) => ({
    hostId: ctx.hostId,
    hostname: ctx.hostname,
    agentVersion: CONVOY_VERSION,
    uptimeMs: ctx.now() - ctx.startedAtMs,
    lastSeq: ctx.journal.current.lastSeq,
    pid: process.pid,
    rssBytes: process.memoryUsage.rss(),
    // After a crash this says which phase and step were interrupted.
    phaseJournal: phaseJournalSummary(ctx.config.stateDir),
  }),
  phase,
});

export function commandHandler(type: string): CommandHandler | undefined {
  return Object.prototype.hasOwnProperty.call(COMMAND_HANDLERS, type) ? COMMAND_HANDLERS[type] : undefined;
}
