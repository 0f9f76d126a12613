/** Translates the wire's self-reported host facts into the stored record, bounding every field. */
import type { WireHostFacts } from '../../proto/wire';
import type { HostFactsRecord } from '../store/store';

const MAX_TEXT = 255;

export function factsFromWire(facts: WireHostFacts | null | undefined): HostFactsRecord {
  return {
    hostname: text(facts?.hostname) || 'unknown',
    agentVersion: text(facts?.agentVersion),
    osPlatform: text(facts?.osPlatform),
    osRelease: text(facts?.osRelease),
    arch: text(facts?.arch),
    osPrettyName: text(facts?.osPrettyName),
    cpus: count(facts?.cpus),
    memoryBytes: count(facts?.memoryBytes),
  };
}

function text(value: string | undefined): string {
  return (value ?? '').slice(0, MAX_TEXT);
}

function count(value: number | undefined): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}
