/**
 * Everything the benchmark must tear down, whichever part is running: each part's workspace and
 * the BlueMind-like fleet, which keeps its own processes and directories. Run once at the end, at
 * the hard timeout or on SIGINT/SIGTERM (the per-workspace ./workspace helper covers one only).
 */
import { note } from './workspace';

export class Teardown {
  private readonly steps: (() => Promise<unknown>)[] = [];
  private ran: Promise<void> | undefined;

  /** Adds a clean-up; the last added runs first. */
  add(step: () => Promise<unknown>): void {
    this.steps.unshift(step);
  }

  /** Runs every clean-up once, each even if an earlier one failed. */
  run(): Promise<void> {
    this.ran ??= (async () => {
      for (const step of this.steps) {
        await step().catch((err: unknown) =>
          note(`clean-up failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
    })();
    return this.ran;
  }
}

/** Tears down and exits at the hard timeout (1) or on SIGINT/SIGTERM (130); returns the disarm. */
export function tearDownOnTimeoutOrSignal(teardown: Teardown, timeoutMinutes: number): () => void {
  const hardTimeout = setTimeout(() => {
    note(`hard timeout: ${timeoutMinutes} min elapsed; cleaning up`);
    void teardown.run().finally(() => process.exit(1));
  }, timeoutMinutes * 60_000);
  const onSignal = (signal: string): void => {
    note(`${signal}: cleaning up`);
    void teardown.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => clearTimeout(hardTimeout);
}
