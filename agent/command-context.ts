/**
 * What a command handler is given and what it returns. Its own module so that the handlers
 * (./commands.ts, ./phase/remote.ts) and the agent that calls them import it without importing
 * each other.
 */
import type { Logger } from '../shared/logger';
import type { AgentConfig } from './config';
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

/**
 * Sends a signed progress report for the command being handled (long commands only); what it
 * returns settles once the report is handed to the stream (never, if the stream is gone).
 */
export type ProgressReporter = (body: Record<string, unknown>) => void | Promise<void>;

export interface CommandHandler {
  (
    body: Readonly<Record<string, unknown>>,
    ctx: CommandContext,
    progress: ProgressReporter,
  ): Promise<Record<string, unknown>>;
  /** Runs without holding up the commands behind it (its answer comes when it is done). */
  readonly background?: boolean;
}
