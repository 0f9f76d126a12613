import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConvoyError, ERROR_CATALOGUE, isErrorCode } from './errors';

const DOC = readFileSync(path.join(__dirname, '../docs/errors.md'), 'utf8');
const documented = new Map(
  [...DOC.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(yes|no)\s*\|/gm)].map(
    (m) => [m[1] ?? '', m[2] === 'yes'] as const,
  ),
);

describe('error catalogue', () => {
  it.each(Object.keys(ERROR_CATALOGUE))('documents %s in docs/errors.md with its retryable flag', (code) => {
    expect(documented.has(code)).toBe(true);
    expect(documented.get(code)).toBe(ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].retryable);
  });

  it('documents no code that does not exist', () => {
    expect([...documented.keys()].filter((c) => !isErrorCode(c))).toEqual([]);
  });

  it('uses UPPER_SNAKE codes', () => {
    for (const code of Object.keys(ERROR_CATALOGUE)) expect(code).toMatch(/^[A-Z][A-Z_]*[A-Z]$/);
  });

  it('carries code, retryable flag, context and cause on ConvoyError', () => {
    const cause = new Error('disk');
    const err = new ConvoyError('CLOCK_SKEW', 'ahead', { hostId: 'h-1' }, { cause });
    expect(err).toMatchObject({
      code: 'CLOCK_SKEW',
      retryable: true,
      context: { hostId: 'h-1' },
      message: 'ahead',
    });
    expect(err.cause).toBe(cause);
    expect(new ConvoyError('TOKEN_UNKNOWN', 'x').retryable).toBe(false);
  });
});
