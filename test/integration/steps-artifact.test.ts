/**
 * artifact and binary.replace against a real HTTP server on 127.0.0.1:0, real Ed25519 signatures,
 * real files and real setcap/getcap.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { artifactExecutor, createArtifactExecutor } from '../../agent/steps/artifact';
import { binaryReplaceExecutor } from '../../agent/steps/binary-replace';
import type { StepContext, StepResult } from '../../agent/steps/step';
import { generateKeyPair, signDetached } from '../../shared/ed25519';
import type { ArtifactStep, BinaryReplaceStep } from '../../shared/recipe/types';
import { tempDir } from '../helpers/processes';
import { describeWithTools } from '../helpers/require-tool';
import { filesBelow, mountSmallTmpfs, unmountAll } from '../helpers/tmpfs';
import { stepBase, stepContext } from '../helpers/step-context';
import { waitFor } from '../helpers/wait';
import { startServer, type TestServer } from './steps-http';

const releaseKey = generateKeyPair();
const otherKey = generateKeyPair();
/** Pinned too, first in the list: a signature by any pinned key is enough. */
const retiredKey = generateKeyPair();
const V1 = Buffer.from('#!/bin/sh\necho "fake app 1.5.0"\n');
const V2 = Buffer.from('#!/bin/sh\necho "fake app 2.0.0"\n');
const sign = (bytes: Uint8Array, key = releaseKey): Buffer => Buffer.from(signDetached(bytes, key.secretKey));
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Path -> body (or status) served; `/endless` never ends, `/stall` stops after a few bytes. */
function routes(): Map<string, Buffer | string | number> {
  const flipped = Buffer.from(V2);
  flipped[12] = (flipped[12] ?? 0) ^ 0x01;
  return new Map<string, Buffer | string | number>([
    ['/good/app', V2],
    ['/good/app.sig', sign(V2).toString('base64')],
    ['/good/app.sha256', `${sha256(V2)}  app\n`],
    ['/old/app', V1],
    ['/old/app.sig', sign(V1).toString('hex')],
    ['/flipped/app', flipped],
    ['/flipped/app.sig', sign(V2)],
    ['/flipped/app.sha256', `${sha256(V2)}  app\n`],
    ['/unsigned/app', V2],
    ['/unsigned/app.sig', 404],
    ['/wrongkey/app', V2],
    ['/wrongkey/app.sig', sign(V2, otherKey)],
    ['/big/app', Buffer.alloc(4096, 7)],
    ['/huge/app', Buffer.alloc(512 * 1024, 9)],
  ]);
}

let server: TestServer;
let endlessClosed = false;
let endlessSent = 0;

beforeAll(async () => {
  const served = routes();
  server = await startServer((req, res) => {
    if (req.url === '/endless') {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk)) endlessSent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => (endlessClosed = true));
      pump();
      return;
    }
    if (req.url === '/chunked/app') {
      // No content-length: the agent learns the size only as the bytes arrive.
      res.writeHead(200);
      for (let i = 0; i < 8; i++) res.write(Buffer.alloc(64 * 1024, 0x42));
      res.end();
      return;
    }
    if (req.url === '/stall') {
      res.writeHead(200);
      res.write('partial body');
      return;
    }
    const body = served.get(req.url);
    if (body === undefined || typeof body === 'number') {
      res.writeHead(typeof body === 'number' ? body : 404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
});
afterAll(() => server.close());

function artifactStep(dir: string, extra: Partial<ArtifactStep> = {}): ArtifactStep {
  return {
    ...stepBase('fetch'),
    type: 'artifact',
    url: `${server.origin}/${dir}/app`,
    name: 'app',
    maxBytes: 1024 * 1024,
    signatureUrl: `${server.origin}/${dir}/app.sig`,
    ...extra,
  };
}

function trustingContext(
  extra: { vars?: Record<string, string>; results?: Map<string, StepResult> } = {},
): StepContext {
  return { ...stepContext(extra), releaseKeys: [retiredKey.publicKey, releaseKey.publicKey] };
}

function stagingOf(ctx: StepContext): string[] {
  const dir = path.join(ctx.stateDir, 'staging');
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('artifact step', () => {
  it('stages a correctly signed binary whose sha256 matches', async () => {
    const ctx = trustingContext();
    const step = artifactStep('good', { sha256Url: `${server.origin}/good/app.sha256` });
    const result = await artifactExecutor.run(step, ctx);
    const staged = path.join(ctx.stateDir, 'staging', 'app');
    expect(result).toMatchObject({ ok: true, data: { path: staged, sha256: sha256(V2), bytes: V2.length } });
    expect(readFileSync(staged)).toEqual(V2);
    expect(stagingOf(ctx)).toEqual(['app']);
  });

  it.each([
    ['one flipped byte', 'flipped', {}, 'the signature does not verify against any pinned release key'],
    ['one flipped byte, with a checksum', 'flipped', { sha256: true }, 'does not match its published sha256'],
    ['an unsigned release', 'unsigned', {}, 'does not exist (404): the artifact is not signed'],
    [
      'a signature by another key',
      'wrongkey',
      {},
      'the signature does not verify against any pinned release key',
    ],
  ])('refuses %s and leaves nothing in staging', async (_what, dir, opts, message) => {
    const ctx = trustingContext();
    writeFileSync(path.join(ctx.stateDir, 'marker'), '');
    const sha = 'sha256' in opts ? { sha256Url: `${server.origin}/${dir}/app.sha256` } : {};
    const result = await artifactExecutor.run(artifactStep(dir, sha), ctx);
    expect(result.error?.code).toBe('ARTIFACT_REJECTED');
    expect(result.error?.message).toContain(message);
    expect(stagingOf(ctx)).toEqual([]);
  });

  it('refuses everything when no release key is pinned', async () => {
    const result = await artifactExecutor.run(artifactStep('good'), stepContext());
    expect(result.error?.code).toBe('ARTIFACT_REJECTED');
  });

  it('stops an endless body at the cap and removes the partial file', async () => {
    const ctx = trustingContext();
    const step = artifactStep('x', { url: `${server.origin}/endless`, maxBytes: 256 * 1024 });
    const result = await artifactExecutor.run(step, ctx);
    expect(result.error).toEqual({
      code: 'ARTIFACT_TOO_LARGE',
      message: 'app is larger than its cap of 262144 bytes',
    });
    await waitFor('the server to see the connection closed', () => endlessClosed);
    // Socket buffers hold a few MiB at most; an uncapped reader would have taken far more by now.
    expect(endlessSent).toBeLessThan(32 * 1024 * 1024);
    expect(stagingOf(ctx)).toEqual([]);
  });

  it('refuses a declared length over the cap before reading the body', async () => {
    const ctx = trustingContext();
    const result = await artifactExecutor.run(artifactStep('big', { maxBytes: 1000 }), ctx);
    expect(result.error?.code).toBe('ARTIFACT_TOO_LARGE');
    expect(stagingOf(ctx)).toEqual([]);
  });

  describe('on a full disk (a 128 KiB tmpfs over staging)', () => {
    afterEach(() => unmountAll());

    async function smallStaging(): Promise<StepContext> {
      const ctx = trustingContext();
      const staging = path.join(ctx.stateDir, 'staging');
      mkdirSync(staging, { mode: 0o700 });
      await mountSmallTmpfs(staging, '128k');
      return ctx;
    }

    it('refuses a declared length that does not fit before writing a byte: DISK_FULL', async () => {
      const ctx = await smallStaging();
      const result = await artifactExecutor.run(artifactStep('huge'), ctx);
      expect(result.error?.code).toBe('DISK_FULL');
      expect(result.error?.message).toMatch(
        /^not enough free space in \S+staging to stage app: 524\.3 kB to download, \d+(\.\d)? kB free; nothing was downloaded$/,
      );
      expect(filesBelow(path.join(ctx.stateDir, 'staging'))).toEqual([]);
    });

    it('reports a disk that fills during a download of unknown length as DISK_FULL and removes the partial file', async () => {
      const ctx = await smallStaging();
      const result = await artifactExecutor.run(artifactStep('chunked'), ctx);
      expect(result.error?.code).toBe('DISK_FULL');
      expect(result.error?.message).toMatch(
        /filled up while staging app after \d+ bytes; the partial file was removed$/,
      );
      expect(filesBelow(path.join(ctx.stateDir, 'staging'))).toEqual([]);
    });
  });

  it('gives up on a server that stalls mid-body', async () => {
    const ctx = trustingContext();
    const executor = createArtifactExecutor({ stallMs: 300 });
    const result = await executor.run(artifactStep('x', { url: `${server.origin}/stall` }), ctx);
    expect(result.error?.code).toBe('STEP_TIMEOUT');
    expect(stagingOf(ctx)).toEqual([]);
  });

  it.each(['..', '.', '/etc/passwd', '../app', 'a\0b', '%2e%2e', '', '-rf', 'x'.repeat(129)])(
    'refuses the name %j without asking the server',
    async (name) => {
      const ctx = trustingContext();
      const before = server.seen.length;
      const result = await artifactExecutor.run(artifactStep('good', { name }), ctx);
      expect(result.error?.code).toBe('ARTIFACT_REJECTED');
      expect(server.seen.length).toBe(before);
      expect(stagingOf(ctx)).toEqual([]);
    },
  );
});

describeWithTools('binary.replace step', ['setcap', 'getcap'])('binary.replace step', () => {
  const CAP = 'cap_net_bind_service=+ep';

  /** An installed binary at version `installed` with a capability, and the new one staged. */
  async function setUp(dir: 'good' | 'old', installed: Buffer) {
    const target = path.join(tempDir('bin'), 'app');
    writeFileSync(target, installed);
    chmodSync(target, 0o750);
    execFileSync('setcap', ['cap_net_raw=+ep', target]);
    const ctx = trustingContext();
    const staged = await artifactExecutor.run(artifactStep(dir), ctx);
    expect(staged.ok).toBe(true);
    const step: BinaryReplaceStep = {
      ...stepBase('swap'),
      type: 'binary.replace',
      fromStep: 'fetch',
      target,
      setcap: CAP,
    };
    const withVars = (
      installedVersion: string,
      targetVersion: string,
      more: [string, StepResult][] = [],
    ) => ({
      ...ctx,
      vars: { installed: installedVersion, target: targetVersion },
      results: new Map([['fetch', staged], ...more]),
    });
    return { target, ctx, step, withVars };
  }

  const getcap = (file: string): string => execFileSync('getcap', [file], { encoding: 'utf8' }).trim();

  it('sets the capability before the swap, keeps the previous binary, and runs', async () => {
    const { target, step, withVars } = await setUp('good', V1);
    const result = await binaryReplaceExecutor.run(step, withVars('1.5.0', '2.0.0'));
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ ok: true, data: { previous: `${target}.previous`, replaced: true } });
    expect(readFileSync(target)).toEqual(V2);
    expect(getcap(target)).toBe(`${target} cap_net_bind_service=ep`);
    expect(statSync(target).mode & 0o7777).toBe(0o750);
    expect(readFileSync(`${target}.previous`)).toEqual(V1);
    expect(getcap(`${target}.previous`)).toBe(`${target}.previous cap_net_raw=ep`);
    expect(existsSync(`${target}.new`)).toBe(false);
    expect(execFileSync(target, { encoding: 'utf8' })).toBe('fake app 2.0.0\n');
  });

  it('fails before the swap when setcap fails, leaving the installed binary alone', async () => {
    const { target, step, withVars } = await setUp('good', V1);
    for (const setcap of ['cap_no_such_thing=+ep', '-r']) {
      const result = await binaryReplaceExecutor.run({ ...step, setcap }, withVars('1.5.0', '2.0.0'));
      expect(result.error?.code).toBe('STEP_FAILED');
      expect(readFileSync(target)).toEqual(V1);
      expect(getcap(target)).toBe(`${target} cap_net_raw=ep`);
      expect(existsSync(`${target}.new`)).toBe(false);
    }
  });

  it('refuses an older, correctly signed release and leaves the installed one alone', async () => {
    const { target, step, withVars } = await setUp('old', V2);
    const result = await binaryReplaceExecutor.run(step, withVars('2.0.0', '1.5.0'));
    expect(result.error).toEqual({
      code: 'DOWNGRADE_REFUSED',
      message: '2.0.0 -> 1.5.0 is a downgrade and no signed permit names it',
    });
    expect(readFileSync(target)).toEqual(V2);
    expect(existsSync(`${target}.new`)).toBe(false);
    expect(existsSync(`${target}.previous`)).toBe(false);
  });

  it('allows a downgrade that a permit signed by a release key names, and no other permit', async () => {
    const { target, ctx, step, withVars } = await setUp('old', V2);
    const permit = path.join(ctx.stateDir, 'staging', 'app.permit');
    writeFileSync(permit, JSON.stringify({ name: 'app', version: '1.5.0' }));
    writeFileSync(`${permit}.sig`, sign(readFileSync(permit), otherKey));
    const forged = await binaryReplaceExecutor.run(step, withVars('2.0.0', '1.5.0'));
    expect(forged.error?.message).toBe('the downgrade permit is not signed by a pinned release key');
    writeFileSync(`${permit}.sig`, sign(readFileSync(permit)));
    const elsewhere = await binaryReplaceExecutor.run(step, withVars('2.0.0', '1.4.0'));
    expect(elsewhere.error?.message).toBe('2.0.0 -> 1.4.0 is a downgrade and the permit names app 1.5.0');
    const allowed = await binaryReplaceExecutor.run(step, withVars('2.0.0', '1.5.0'));
    expect(allowed.ok).toBe(true);
    expect(readFileSync(target)).toEqual(V1);
  });

  it('rolls back to the previous binary, capabilities included, and a second rollback does nothing', async () => {
    const { target, step, withVars } = await setUp('good', V1);
    const replaced = await binaryReplaceExecutor.run(step, withVars('1.5.0', '2.0.0'));
    const ctx = withVars('1.5.0', '2.0.0', [['swap', replaced]]);
    const first = await binaryReplaceExecutor.rollback(step, ctx);
    expect(first).toMatchObject({ ok: true, data: { restored: true } });
    expect(readFileSync(target)).toEqual(V1);
    expect(getcap(target)).toBe(`${target} cap_net_raw=ep`);
    expect(existsSync(`${target}.previous`)).toBe(false);
    const second = await binaryReplaceExecutor.rollback(step, ctx);
    expect(second).toMatchObject({ ok: true, data: { restored: false } });
    expect(readFileSync(target)).toEqual(V1);
  });

  it('after a crash without a result, rolls back only if the new binary is in place', async () => {
    const { target, step, withVars } = await setUp('good', V1);
    writeFileSync(`${target}.previous`, 'stale binary from an older upgrade');
    const notSwapped = await binaryReplaceExecutor.rollback(step, withVars('1.5.0', '2.0.0'));
    expect(notSwapped).toMatchObject({ ok: true, data: { restored: false } });
    expect(readFileSync(target)).toEqual(V1);
    await binaryReplaceExecutor.run(step, withVars('1.5.0', '2.0.0'));
    const swapped = await binaryReplaceExecutor.rollback(step, withVars('1.5.0', '2.0.0'));
    expect(swapped).toMatchObject({ ok: true, data: { restored: true } });
    expect(readFileSync(target)).toEqual(V1);
  });
});
