/**
 * One CLI's `main` run in this process, its output captured and its exit code read back: for
 * the flag and fuzz tests, which run thousands of command lines and cannot spawn each.
 */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `main(argv)`; a command that has not returned after `timeoutMs` fails the test. */
export async function runInProcess(
  main: (argv: readonly string[]) => Promise<void>,
  argv: string[],
  timeoutMs = 20_000,
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = (chunk: string | Uint8Array) => ((stdout += chunk.toString()), true);
  process.stderr.write = (chunk: string | Uint8Array) => ((stderr += chunk.toString()), true);
  process.exitCode = undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      main(argv),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no exit after ${timeoutMs} ms: ${JSON.stringify(argv)}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout, stderr };
}
