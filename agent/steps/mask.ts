/**
 * Masking secret values out of text before it leaves a step: output tails, error messages and
 * anything else a result carries to the journal, the controller or a log. The logger masks too,
 * but results are stored and sent without passing through it.
 */
import { REDACTED } from '../../shared/logger';

/** Replaces every occurrence of every secret with `[redacted]`; longest first, so a secret containing another is masked whole. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** Default bound on a result's output tail: enough for an error message and its context. */
export const OUTPUT_TAIL_BYTES = 4096;

/**
 * The last `maxBytes` of text the caller already masked (masked before cut, so a cut can never
 * leave part of a secret that masking would miss), starting on a line boundary where possible so the tail reads whole lines.
 */
export function tailOf(text: string, maxBytes = OUTPUT_TAIL_BYTES): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  const kept = bytes.subarray(bytes.length - maxBytes).toString('utf8');
  const newline = kept.indexOf('\n');
  return newline >= 0 && newline < kept.length - 1 ? kept.slice(newline + 1) : kept;
}

/**
 * Drops the first, possibly partial, line of output whose head the exec buffer already cut: that
 * cut happened before masking, and could have left only the end of a secret, which masking no
 * longer recognises.
 */
export function dropCutHead(text: string, cut: boolean): string {
  if (!cut) return text;
  const newline = text.indexOf('\n');
  return newline >= 0 ? text.slice(newline + 1) : '';
}
