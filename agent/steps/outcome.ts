/**
 * Turning a step's work into a StepResult: operational failures (catalogued errors, failed
 * system calls) become `ok: false` with a masked one-line reason; anything else is a bug and
 * throws, as the StepExecutor contract says.
 */
import { ConvoyError, type ErrorCode } from '../../shared/errors';
import { maskSecrets, tailOf } from './mask';
import type { StepContext, StepResult } from './step';

/** A catalogued step failure that also carries what the step saw (output, exit code). */
export class StepFailure extends ConvoyError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly detail: { readonly outputTail?: string; readonly exitCode?: number | null } = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, {}, options);
  }
}

/** What a step's work returns on success; `ok` and `durationMs` are added by settleStep. */
export type StepSuccess = Omit<StepResult, 'ok' | 'durationMs' | 'error' | 'outputTail'> & {
  readonly outputTail?: string;
};

/**
 * Runs `work` and settles it into a result. `extraSecrets` are values to mask beyond the
 * resolver's (an encoded credential, for instance).
 */
export async function settleStep(
  ctx: StepContext,
  work: () => Promise<StepSuccess>,
  extraSecrets: () => readonly string[] = () => [],
): Promise<StepResult> {
  const started = ctx.now();
  const mask = (text: string): string => maskSecrets(text, [...ctx.secrets.values(), ...extraSecrets()]);
  try {
    const success = await work();
    return {
      ...success,
      ok: true,
      outputTail: tailOf(mask(success.outputTail ?? '')),
      durationMs: ctx.now() - started,
    };
  } catch (err) {
    const failure = asFailure(err);
    if (failure === undefined) throw err;
    return {
      ok: false,
      error: { code: failure.code, message: mask(failure.message) },
      outputTail: tailOf(mask(failure instanceof StepFailure ? (failure.detail.outputTail ?? '') : '')),
      ...(failure instanceof StepFailure && failure.detail.exitCode !== undefined
        ? { exitCode: failure.detail.exitCode }
        : {}),
      durationMs: ctx.now() - started,
    };
  }
}

/** Catalogued errors as they are; failed system calls and aborts as STEP_FAILED; bugs not at all. */
function asFailure(err: unknown): ConvoyError | undefined {
  if (err instanceof ConvoyError) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new ConvoyError('STEP_FAILED', 'the step was cancelled', {}, { cause: err });
  }
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    return new ConvoyError('STEP_FAILED', err.message, {}, { cause: err });
  }
  return undefined;
}

/** Resolves a secret by name, reporting an unknown one as SECRET_UNKNOWN (named, never valued). */
export function resolveSecret(ctx: StepContext, name: string): string {
  try {
    return ctx.secrets.get(name);
  } catch (err) {
    throw new ConvoyError(
      'SECRET_UNKNOWN',
      `secret ${JSON.stringify(name)} is not defined on this host`,
      {
        field: name,
      },
      { cause: err },
    );
  }
}
