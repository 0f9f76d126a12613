import { parseSignature } from '../../agent/steps/artifact';
import { verifyDetached } from '../../shared/ed25519';
import { parsePublicKey } from '../../shared/keys';
import { newReleaseKey, parseReleaseKey, signRelease } from '../../shared/release';

describe('release signing', () => {
  it('writes sidecars the artifact step accepts, for the key the file holds', () => {
    const key = newReleaseKey();
    const parsed = parseReleaseKey(key.secretKeyText, 'release.key');
    expect(parsed.publicKey).toBe(key.publicKey);
    const content = Buffer.from('the agent bundle');
    const side = signRelease(content, 'convoy-agent.js', parsed.secretKey);
    expect(side.sha256).toMatch(/^[0-9a-f]{64} {2}convoy-agent\.js\n$/);
    const signature = parseSignature(Buffer.from(side.signature));
    const publicKey = parsePublicKey(key.publicKey);
    expect(publicKey).not.toBeNull();
    expect(verifyDetached(content, signature, publicKey!)).toBe(true);
    expect(verifyDetached(Buffer.from('the agent bundlE'), signature, publicKey!)).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['not base64', 'not a key!'],
    ['too short', Buffer.alloc(32).toString('base64')],
  ])('refuses a key file that is %s, naming the file', (_name, text) => {
    expect(() => parseReleaseKey(text, '/etc/convoy/release.key')).toThrow(
      /\/etc\/convoy\/release\.key: not a release key/,
    );
  });
});
