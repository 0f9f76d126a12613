/**
 * The end of the run: every test file has been checked on its own (leak-check-environment.ts);
 * this catches what those checks cannot see (a file written straight into the run's root, a
 * process a file's check missed because it started after it) and removes the root. Anything
 * found fails the run: jest exits non-zero with the list.
 */
import { rmSync } from 'node:fs';
import { bulletList, killAll, leftoverFiles, markedProcesses, RUN_MARKER } from './leaks';

/** jest's own workers inherit the marker; they are still alive here and are not leaks. */
function jestWorkers(): Set<number> {
  const pids = new Set([process.pid]);
  for (const p of markedProcesses(RUN_MARKER, process.env[RUN_MARKER] ?? '', new Set())) {
    if (/jest-worker[/\\]build[/\\]/.test(p.command)) pids.add(p.pid);
  }
  return pids;
}

export default function globalTeardown(): void {
  const root = process.env[RUN_MARKER];
  if (root === undefined) return;
  const processes = markedProcesses(RUN_MARKER, root, jestWorkers());
  const files = leftoverFiles(root);
  killAll(processes);
  rmSync(root, { recursive: true, force: true });
  const parts: string[] = [];
  if (processes.length > 0) {
    parts.push(
      `processes still running (killed now):\n${bulletList(processes.map((p) => `pid ${p.pid}: ${p.command}`))}`,
    );
  }
  if (files.length > 0)
    parts.push(`files in the run's temporary root ${root} (removed now):\n${bulletList(files)}`);
  if (parts.length > 0) throw new Error(`leak check: the test run left behind ${parts.join('; ')}`);
}
