/** What the agent reports about its host at enrollment and at every connection. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { WireHostFacts } from '../proto/wire';
import { CONVOY_VERSION } from '../shared/version';

export function collectHostFacts(hostnameOverride?: string): WireHostFacts {
  return {
    hostname: hostnameOverride ?? os.hostname(),
    agentVersion: CONVOY_VERSION,
    osPlatform: os.platform(),
    osRelease: os.release(),
    arch: os.arch(),
    osPrettyName: prettyName(),
    cpus: os.cpus().length,
    memoryBytes: os.totalmem(),
  };
}

function prettyName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? '';
  } catch {
    return '';
  }
}
