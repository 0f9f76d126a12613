/**
 * `artifact`: downloads a release file into `STATE/staging/<name>` and stages it only once it is
 * proven genuine. The body streams into `<name>.partial` with the byte cap enforced as it arrives
 * (an endless body stops at the cap) and a stall bound on the socket; then the sha256 (when
 * `sha256Url` is given) and the detached Ed25519 signature from `signatureUrl`, checked against
 * every pinned release key, are verified over the exact bytes on disk; only then is the partial
 * file renamed to its name. On any failure nothing stays in staging, not even an older copy.
 * A declared length that does not fit the staging file system's free space is DISK_FULL before the
 * body is read; a disk that fills during the download is DISK_FULL too (not retryable), never an
 * "unavailable" artifact.
 *
 * Signature files: 64 raw bytes, or the same as hex or base64 text. Checksum files: `sha256sum`
 * format (the first word is the hex digest). A missing signature (404/410) is a rejection, not an
 * outage: an unsigned release is never staged. The name is re-checked here against a strict
 * grammar, and the resolved path must sit directly in staging, whatever the recipe compiler let through.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifyDetached, SIGNATURE_BYTES } from '../../shared/ed25519';
import { ConvoyError } from '../../shared/errors';
import type { ArtifactStep } from '../../shared/recipe/types';
import { fsyncDir, type FileDigest } from './files';
import { openResponse, sendRequest, showUrl } from './http-client';
import { preflightFreeSpace, isDiskFullError } from './free-space';
import { settleStep, StepFailure, type StepSuccess } from './outcome';
import type { StepContext, StepExecutor } from './step';

export interface ArtifactExecutorOptions {
  /** Longest silence from the server while downloading, milliseconds. Default 30 000. */
  readonly stallMs?: number;
}

export const STAGING_DIR = 'staging';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Signature and checksum files are tiny; anything bigger is not one. */
const SIDECAR_MAX_BYTES = 4096;

export function createArtifactExecutor(options: ArtifactExecutorOptions = {}): StepExecutor<ArtifactStep> {
  const stallMs = options.stallMs ?? 30_000;
  return {
    type: 'artifact',
    contract: {
      checks:
        'name grammar, byte cap, free space for a declared length (else DISK_FULL; a disk that fills mid-download is DISK_FULL too), stall bound, sha256 and an Ed25519 signature by a pinned release key',
      changes: 'only STATE/staging/<name>, and only after every check passed',
      idempotent: true,
      interrupted: 'redo',
      rollback:
        'none needed: nothing outside staging changed; the staged file is replaced by the next download',
    },
    run: (step, ctx) => settleStep(ctx, () => stageArtifact(step, ctx, stallMs)),
  };
}

export const artifactExecutor = createArtifactExecutor();

/** The staged path for `name`, or ARTIFACT_REJECTED when the name could lead anywhere else. */
export function stagedPath(stagingDir: string, name: string): string {
  if (!NAME.test(name) || name === '.' || name === '..') {
    throw new ConvoyError('ARTIFACT_REJECTED', `artifact name ${JSON.stringify(name)} is not allowed`);
  }
  const staging = path.resolve(stagingDir);
  const resolved = path.resolve(staging, name);
  if (path.dirname(resolved) !== staging) {
    throw new ConvoyError(
      'ARTIFACT_REJECTED',
      `artifact name ${JSON.stringify(name)} leaves the staging directory`,
    );
  }
  return resolved;
}

async function stageArtifact(step: ArtifactStep, ctx: StepContext, stallMs: number): Promise<StepSuccess> {
  const staging = path.join(ctx.stateDir, STAGING_DIR);
  const final = stagedPath(staging, step.name);
  const partial = `${final}.partial`;
  if (ctx.releaseKeys.length === 0) {
    throw new ConvoyError(
      'ARTIFACT_REJECTED',
      'no release key is pinned on this agent, so no artifact can be trusted',
    );
  }
  await mkdir(staging, { recursive: true, mode: 0o700 });
  await rm(final, { force: true });
  await rm(partial, { force: true });
  try {
    const streamed = await download(step, ctx, partial, stallMs);
    const digest = await verifyArtifact(step, ctx, partial, streamed);
    await rename(partial, final);
    await fsyncDir(staging);
    return {
      data: { path: final, sha256: digest.sha256, bytes: digest.bytes },
      outputTail: `staged ${step.name}: ${digest.bytes} bytes, sha256 ${digest.sha256}\n`,
    };
  } catch (err) {
    await rm(partial, { force: true });
    await rm(final, { force: true });
    throw err;
  }
}

/** Streams the body into `partial`, refusing it past maxBytes; the streamed digest. */
async function download(
  step: ArtifactStep,
  ctx: StepContext,
  partial: string,
  stallMs: number,
): Promise<FileDigest> {
  const request = { url: step.url, method: 'GET', timeoutMs: step.timeoutMs, stallMs, signal: ctx.signal };
  const { res, explain } = await openResponse(request, 'ARTIFACT_UNAVAILABLE');
  if (res.statusCode !== 200) {
    res.destroy();
    throw new ConvoyError('ARTIFACT_UNAVAILABLE', `GET ${showUrl(step.url)} answered ${res.statusCode ?? 0}`);
  }
  const tooLarge = (): ConvoyError =>
    new ConvoyError('ARTIFACT_TOO_LARGE', `${step.name} is larger than its cap of ${step.maxBytes} bytes`);
  const declared = Number(res.headers['content-length'] ?? 0);
  if (declared > step.maxBytes) {
    res.destroy();
    throw tooLarge();
  }
  if (declared > 0) {
    await preflightFreeSpace(path.dirname(partial), declared, step.name).catch((err: unknown) => {
      res.destroy();
      throw err;
    });
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > step.maxBytes) return done(tooLarge());
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, cap, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    if (err instanceof ConvoyError) throw err;
    // Before explain(): a full disk is ours, not the server's, and retrying will not help.
    if (isDiskFullError(err)) {
      throw new StepFailure(
        'DISK_FULL',
        `the disk holding ${path.dirname(partial)} filled up while staging ${step.name} ` +
          `after ${bytes} bytes; the partial file was removed`,
      );
    }
    throw explain(err);
  }
  const handle = await open(partial, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Checks the bytes on disk (what will be installed), not only what streamed past. */
async function verifyArtifact(
  step: ArtifactStep,
  ctx: StepContext,
  partial: string,
  streamed: FileDigest,
): Promise<FileDigest> {
  const content = await readFile(partial);
  const sha256 = createHash('sha256').update(content).digest('hex');
  if (sha256 !== streamed.sha256 || content.length !== streamed.bytes) {
    throw new ConvoyError('ARTIFACT_REJECTED', `${step.name} changed on disk while it was being staged`);
  }
  if (step.sha256Url !== undefined) {
    const expected = parseChecksum(await fetchSidecar(step.sha256Url, ctx, step.timeoutMs));
    if (expected !== sha256) {
      throw new ConvoyError('ARTIFACT_REJECTED', `${step.name} does not match its published sha256`);
    }
  }
  const signature = parseSignature(await fetchSidecar(step.signatureUrl, ctx, step.timeoutMs));
  if (!ctx.releaseKeys.some((key) => verifyDetached(content, signature, key))) {
    throw new ConvoyError(
      'ARTIFACT_REJECTED',
      `${step.name}: the signature does not verify against any pinned release key`,
    );
  }
  return { sha256, bytes: content.length };
}

async function fetchSidecar(url: string, ctx: StepContext, timeoutMs: number): Promise<Buffer> {
  const reply = await sendRequest(
    { url, method: 'GET', timeoutMs, signal: ctx.signal },
    SIDECAR_MAX_BYTES + 1,
    'ARTIFACT_UNAVAILABLE',
  );
  if (reply.status === 404 || reply.status === 410) {
    throw new ConvoyError(
      'ARTIFACT_REJECTED',
      `${showUrl(url)} does not exist (${reply.status}): the artifact is not signed`,
    );
  }
  if (reply.status !== 200) {
    throw new ConvoyError('ARTIFACT_UNAVAILABLE', `GET ${showUrl(url)} answered ${reply.status}`);
  }
  if (reply.body.length > SIDECAR_MAX_BYTES) {
    throw new ConvoyError('ARTIFACT_REJECTED', `${showUrl(url)} is too large to be a signature or checksum`);
  }
  return reply.body;
}

/** 64 raw bytes, or hex or base64 text of them. */
export function parseSignature(body: Buffer): Uint8Array {
  if (body.length === SIGNATURE_BYTES) return new Uint8Array(body);
  const text = body.toString('latin1').trim();
  let decoded: Buffer | undefined;
  if (/^[0-9a-fA-F]{128}$/.test(text)) decoded = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]{86}==$/.test(text)) decoded = Buffer.from(text, 'base64');
  if (decoded?.length !== SIGNATURE_BYTES) {
    throw new ConvoyError('ARTIFACT_REJECTED', 'the signature is not 64 bytes (raw, hex or base64)');
  }
  return new Uint8Array(decoded);
}

/** The digest from a `sha256sum` line, lower-cased. */
export function parseChecksum(body: Buffer): string {
  const first = body.toString('latin1').trim().split(/\s+/)[0] ?? '';
  if (!/^[0-9a-fA-F]{64}$/.test(first)) {
    throw new ConvoyError('ARTIFACT_REJECTED', 'the checksum file does not start with a sha256 hex digest');
  }
  return first.toLowerCase();
}
