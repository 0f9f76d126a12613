/**
 * What a verified command does. Only the types listed here run; anything else is refused, so a
 * controller cannot make the agent do what it was not built to do.
 */
import type { SeqJournal } from './seq-journal';
import { CONVOY_VERSION } from '../shared/version';

export interface CommandContext {
  readonly hostId: string;
  readonly hostname: string;
  readonly startedAtMs: number;
  readonly journal: SeqJournal;
  readonly now: () => number;
}

export type CommandHandler = (
  body: Readonly<Record<string, unknown>>,
  ctx: CommandContext,
) => Promise<Record<string, unknown>>;

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
  }),
});

export function commandHandler(type: string): CommandHandler | undefined {
  return Object.prototype.hasOwnProperty.call(COMMAND_HANDLERS, type) ? COMMAND_HANDLERS[type] : undefined;
}
