import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_FLEET_BYTES } from '../shared/fleet/load';
import { loadFleetFile } from './fleet-file';

const VALID = `
windows:
  any-night: { cron: "0 1 * * *", duration: 1h30m }
deployments:
  - name: cells.staging
    recipe: ./recipes/cells.yaml
    hosts: [{ id: h-0000000000000001 }]
    window: any-night
`;

describe('loadFleetFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'convoy-fleet-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file and resolves recipe paths against its directory', () => {
    const file = path.join(dir, 'fleet.yaml');
    writeFileSync(file, VALID);
    const fleet = loadFleetFile(file);
    expect(fleet.deployments[0]?.recipe).toBe(path.join(dir, 'recipes', 'cells.yaml'));
  });

  it('resolves recipe paths against the directory of a file named relative to the working directory', () => {
    writeFileSync(path.join(dir, 'fleet.yaml'), VALID);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(loadFleetFile('fleet.yaml').deployments[0]?.recipe).toBe(
        path.join(dir, 'recipes', 'cells.yaml'),
      );
    } finally {
      process.chdir(cwd);
    }
  });

  it('reports a missing file with its name', () => {
    const file = path.join(dir, 'nope.yaml');
    expect(() => loadFleetFile(file)).toThrow(`${file}: cannot read (ENOENT)`);
  });

  it('refuses a directory and an oversized file before reading them', () => {
    expect(() => loadFleetFile(dir)).toThrow(`${dir}: is not a regular file`);
    const big = path.join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(MAX_FLEET_BYTES)}\n`);
    expect(() => loadFleetFile(big)).toThrow(`${big}: larger than ${MAX_FLEET_BYTES} bytes`);
  });
});
