import type { DeploymentSpec } from '../../shared/fleet/types';
import type { HostRecord } from '../store/store';
import {
  amountOf,
  assignBatches,
  latestCommon,
  offers,
  resolveHosts,
  upstreamVersion,
  upstreamVersions,
} from './plan';
import { decideUpgrade } from '../../shared/semver-policy';
import { diffValues } from './deployment-store';
import { SchedulerClock } from './clock';

describe('batches', () => {
  it('puts the canary alone first, then groups of the concurrency', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    expect(assignBatches(ids, 1, { kind: 'count', value: 2 })).toEqual([
      ['a'],
      ['b', 'c'],
      ['d', 'e'],
      ['f'],
    ]);
    expect(assignBatches(ids, 0, { kind: 'count', value: 4 })).toEqual([
      ['a', 'b', 'c', 'd'],
      ['e', 'f'],
    ]);
  });

  it('reads a percentage of every host, rounded down, at least one host per batch', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `h${i}`);
    expect(assignBatches(ids, 1, { kind: 'percent', value: 30 }).map((b) => b.length)).toEqual([1, 3, 3, 3]);
    expect(assignBatches(ids, 1, { kind: 'percent', value: 1 }).map((b) => b.length)).toEqual(
      Array.from({ length: 10 }, () => 1),
    );
  });

  it('has no batch when nothing needs upgrading', () => {
    expect(assignBatches([], 1, { kind: 'count', value: 2 })).toEqual([]);
  });

  it('resolves error thresholds as the docs say: 10% of 10 hosts tolerates 1, of 9 hosts none', () => {
    expect(amountOf({ kind: 'percent', value: 10 }, 10)).toBe(1);
    expect(amountOf({ kind: 'percent', value: 10 }, 9)).toBe(0);
    expect(amountOf({ kind: 'count', value: 0 }, 50)).toBe(0);
  });
});

describe('latest', () => {
  it('is the highest version every host can get', () => {
    expect(
      latestCommon([
        ['4.1.0', '4.1.2', '4.2.0'],
        ['4.1.2', '4.1.0'],
      ]),
    ).toBe('4.1.2');
    expect(latestCommon([['1.0.0'], ['2.0.0']])).toBe('');
    expect(latestCommon([])).toBe('');
  });

  it('orders by semver, not text', () => {
    expect(latestCommon([['4.9.0', '4.10.0']])).toBe('4.10.0');
  });
});

function host(id: string, labels: Record<string, string>, state: HostRecord['state'] = 'active'): HostRecord {
  return { id, hostname: id, state, labels } as unknown as HostRecord;
}

function deployment(hosts: DeploymentSpec['hosts']): DeploymentSpec {
  return { name: 'mail', hosts, vars: { a: 'deployment' } } as unknown as DeploymentSpec;
}

describe('resolveHosts', () => {
  const known = [
    host('h1', { role: 'core' }),
    host('h2', { site: 'paris', role: 'edge' }),
    host('h3', { site: 'paris' }, 'pending'),
  ];

  it('takes ids and selectors, first entry wins, role from the entry or the label, host vars over deployment vars', () => {
    const resolved = resolveHosts(
      deployment([
        { id: 'h1', vars: { a: 'host' } },
        { select: { site: 'paris' }, role: 'web', vars: {} },
        { id: 'h2', role: 'ignored', vars: {} },
      ]),
      known,
    );
    expect(resolved.map((r) => [r.host.id, r.role, r.vars['a']])).toEqual([
      ['h1', 'core', 'host'],
      ['h2', 'web', 'deployment'],
    ]);
  });

  it('names an id that is not enrolled, and a pending host', () => {
    expect(() => resolveHosts(deployment([{ id: 'nope', vars: {} }]), known)).toThrow(
      /hosts\[0\]\.id nope is not enrolled/,
    );
    expect(() => resolveHosts(deployment([{ id: 'h3', vars: {} }]), known)).toThrow(/host h3 is pending/);
  });

  it('refuses a deployment that matches no host', () => {
    expect(() => resolveHosts(deployment([{ select: { site: 'tokyo' }, vars: {} }]), known)).toThrow(
      /no host matches/,
    );
  });
});

describe('fleet diff', () => {
  it('names every changed leaf with its path', () => {
    expect(
      diffValues(
        { batches: { canary: 1, concurrency: { kind: 'count', value: 1 } }, hosts: [{ id: 'a' }] },
        {
          batches: { canary: 1, concurrency: { kind: 'count', value: 2 } },
          hosts: [{ id: 'a' }, { id: 'b' }],
        },
        '',
      ),
    ).toEqual(['batches.concurrency.value: 1 -> 2', 'hosts[1]: (none) -> {"id":"b"}']);
  });
});

describe('scheduler clock', () => {
  it('runs from its start, and warps only forward and only when asked to', () => {
    let real = 1_000;
    const clock = new SchedulerClock(50_000, true, () => real);
    expect(clock.now()).toBe(50_000);
    real += 10;
    expect(clock.now()).toBe(50_010);
    expect(clock.warpTo(40_000)).toBe(false);
    expect(clock.warpTo(90_000)).toBe(true);
    expect(clock.now()).toBe(90_000);
    const fixed = new SchedulerClock(undefined, false, () => real);
    expect(fixed.warpTo(real + 5_000)).toBe(false);
    expect(fixed.now()).toBe(real);
  });
});

describe('packaged versions', () => {
  it('reads an RPM release or Debian revision as a build of the upstream version, not a prerelease', () => {
    expect(upstreamVersion('2.1.0-1')).toBe('2.1.0');
    expect(upstreamVersion('2.1.0-1.el9')).toBe('2.1.0');
    expect(upstreamVersion('4.1.2-2ubuntu1')).toBe('4.1.2');
    expect(upstreamVersion('4.1.0-rc.1')).toBe('4.1.0-rc.1');
    expect(offers(['2.1.0-1'], '2.1.0')).toBe(true);
    expect(offers(['2.1.0-1'], '2.2.0')).toBe(false);
    expect(offers(['4.1.0-rc.1'], '4.1.0')).toBe(false);
  });

  it('resolves latest over RPM version-releases as releases: 3.0.0-1.el9 is 3.0.0, a major, not a prerelease', () => {
    const available = upstreamVersions(['2.1.0-2.el9', '3.0.0-1.el9', '2.1.0-10.el9']);
    expect(available).toEqual(['2.1.0', '3.0.0']);
    const latest = latestCommon([available, upstreamVersions(['3.0.0-1.el9', '2.1.0-1'])]);
    expect(latest).toBe('3.0.0');
    expect(decideUpgrade('2.1.0', latest)).toMatchObject({ kind: 'major', decision: 'needs-approval' });
    // What the raw strings would have given: a prerelease, and 2.1.0-10.el9 below 2.1.0-2.el9.
    expect(decideUpgrade('2.1.0', '2.1.0-10.el9').kind).toBe('downgrade');
  });
});
