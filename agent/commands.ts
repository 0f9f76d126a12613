/**
 * What a verified command does. Only the types listed here run; anything else is refused, so a
 * controller cannot make the agent do what it was not built to do.
 */
import type { Logger } from '../shared/logger';
import { CONVOY_VERSION } from '../shared/version';
import type { AgentConfig } from './config';
import { phaseJournalSummary } from './phase/summary';
import type { SeqJournal } from './seq-journal';

export interface CommandContext {
  readonly hostId: string;
  readonly hostname: string;
  readonly startedAtMs: number;
  readonly journal: SeqJournal;
  readonly now: () => number;
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly requestRestart?: () => void;
}

/** Sends a signed progress report for the command being handled (long commands only). */
export type ProgressReporter = (body: Record<string, unknown>) => void;

export interface CommandHandler {
  (
    body: Readonly<Record<string, unknown>>,
    ctx: CommandContext,
    progress: ProgressReporter,
  ): Promise<Record<string, unknown>>;
  /** Runs without holding up the commands behind it (its answer comes when it is done). */
  readonly background?: boolean;
}

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
