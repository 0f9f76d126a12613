/**
 * Checks that need the whole fleet file: unique deployment names, host ids listed once per
 * deployment, and windows that exist. They read the raw data, not the compiled fleet, so that they
 * run even when the schema found problems elsewhere; anything of the wrong shape is skipped here,
 * as the schema has reported it already.
 */
import { at, isMapping, type Problem } from '../schema';

const own = (o: Record<string, unknown>, key: string): boolean =>
  Object.prototype.hasOwnProperty.call(o, key);

export function crossCheckFleet(raw: Record<string, unknown>, problems: Problem[]): void {
  const deployments = Array.isArray(raw.deployments) ? (raw.deployments as unknown[]) : [];
  const windows = raw.windows === undefined || raw.windows === null ? {} : raw.windows;
  const names = new Map<string, string>();
  deployments.forEach((d, i) => {
    if (!isMapping(d)) return;
    const where = `deployments[${i}]`;
    if (typeof d.name === 'string') {
      const first = names.get(d.name);
      if (first === undefined) names.set(d.name, at(where, 'name'));
      else
        problems.push({
          path: at(where, 'name'),
          message: `duplicate deployment name ${JSON.stringify(d.name)} (first at ${first})`,
        });
    }
    if (typeof d.window === 'string' && isMapping(windows) && !own(windows, d.window)) {
      const known = Object.keys(windows);
      const listed = known.length > 0 ? `known: ${known.join(', ')}` : 'the file defines no windows';
      problems.push({
        path: at(where, 'window'),
        message: `no window named ${JSON.stringify(d.window)} in windows (${listed})`,
      });
    }
    checkHostIds(d.hosts, at(where, 'hosts'), problems);
  });
}

function checkHostIds(hosts: unknown, where: string, problems: Problem[]): void {
  if (!Array.isArray(hosts)) return;
  const first = new Map<string, string>();
  hosts.forEach((h: unknown, i) => {
    if (!isMapping(h) || typeof h.id !== 'string') return;
    const path = at(`${where}[${i}]`, 'id');
    const earlier = first.get(h.id);
    if (earlier === undefined) first.set(h.id, path);
    else
      problems.push({ path, message: `host ${JSON.stringify(h.id)} is listed twice (first at ${earlier})` });
  });
}
