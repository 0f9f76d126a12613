/**
 * Reads a fleet file from disk for `convoy apply`: size-checked before it is read, then loaded by
 * the pure shared/fleet/load.ts with recipe paths resolved against the file's directory.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { FleetError, loadFleetText, MAX_FLEET_BYTES } from '../shared/fleet/load';
import type { FleetSpec } from '../shared/fleet/types';

/** Reads and loads a fleet file; an unreadable or oversized file is a FleetError like any other. */
export function loadFleetFile(file: string): FleetSpec {
  let text: string;
  try {
    // Checked before reading, so a huge file is never loaded into memory.
    const stat = statSync(file);
    if (!stat.isFile()) throw new FleetError(file, [{ path: '', message: 'is not a regular file' }]);
    if (stat.size > MAX_FLEET_BYTES)
      throw new FleetError(file, [{ path: '', message: `larger than ${MAX_FLEET_BYTES} bytes` }]);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof FleetError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new FleetError(file, [{ path: '', message: `cannot read (${code})` }]);
  }
  return loadFleetText(text, file, path.dirname(path.resolve(file)));
}
