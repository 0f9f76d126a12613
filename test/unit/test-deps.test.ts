/**
 * A fresh machine runs the README's test block and nothing else (issue 12): the block must run
 * scripts/install-test-deps.sh, that script must install the package of every tool the fixtures
 * and tests name (scripts/fixtures/tools.ts), and .ci/run must run exactly that block.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TOOL_PACKAGES } from '../../scripts/fixtures/tools';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

/** Essential or required in Debian 12: even debootstrap's minbase has them. */
const BASE_PACKAGES = new Set(['apt', 'dpkg', 'gzip', 'mount', 'tar', 'util-linux']);

/** The shell blocks of the README's "## Quick start" section, as fresh-machine reads them. */
function quickStartBlocks(): string[] {
  const section = /^## Quick start\n([\s\S]*?)(?=^## )/m.exec(read('README.md'))?.[1] ?? '';
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => (m[1] ?? '').trim());
}

/** The packages of the script's `apt-get install` command (backslash continuations joined). */
function installedPackages(): Set<string> {
  const script = read('scripts/install-test-deps.sh').replace(/\\\n/g, ' ');
  const line = /^apt-get install -y --no-install-recommends (.*)$/m.exec(script)?.[1] ?? '';
  return new Set(line.split(/\s+/).filter(Boolean));
}

describe('test dependencies on a fresh machine', () => {
  it("has the README's test block run the install script, then the whole suite", () => {
    expect(quickStartBlocks()[1]).toBe('scripts/install-test-deps.sh && npm ci && npm test');
  });

  it('has .ci/run run exactly that block', () => {
    const commands = read('.ci/run')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(commands).toEqual([
      'set -euo pipefail',
      'cd "$(dirname "$0")/.."',
      'node --version',
      quickStartBlocks()[1],
    ]);
  });

  it('installs the package of every tool the fixtures and tests use', () => {
    const script = read('scripts/install-test-deps.sh');
    expect(script).toMatch(/^apt-get update$/m);
    const installed = installedPackages();
    const missing = [...new Set(Object.values(TOOL_PACKAGES))].filter(
      (pkg) => !installed.has(pkg) && !BASE_PACKAGES.has(pkg),
    );
    expect(missing).toEqual([]);
  });
});
