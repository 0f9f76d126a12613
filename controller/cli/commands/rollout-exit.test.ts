import type { HostState, RolloutState } from '../../rollout/model';
import type { RolloutView } from '../../rollout/view';
import { EXIT_NEEDS_OPERATOR, watchExitCode } from './rollout-follow';

type Hosts = RolloutView['hosts'];

function host(state: HostState): Hosts[number] {
  return {
    hostId: `h-${state}`,
    hostname: state,
    role: 'core',
    batch: 0,
    state,
    phase: null,
    installed: '1.0.0',
    staged: '',
    unknown: false,
    reason: '',
    startedAt: null,
    finishedAt: null,
    downtimeMs: null,
    rebooting: false,
    held: null,
  };
}

describe('rollout watch exit code', () => {
  it.each<[RolloutState, HostState[], number]>([
    ['succeeded', ['upgraded', 'upgraded'], 0],
    ['held', ['verify-failed', 'upgraded'], EXIT_NEEDS_OPERATOR],
    ['halted', ['rolled-back', 'staged'], EXIT_NEEDS_OPERATOR],
    ['rolled-back', ['rolled-back', 'rolled-back'], 1],
    ['aborted', ['rolled-back', 'staged'], 1],
    // Ended, but a host is still broken: somebody has to act on it.
    ['failed', ['rollback-failed', 'rolled-back'], EXIT_NEEDS_OPERATOR],
    ['aborted', ['rollback-failed', 'staged'], EXIT_NEEDS_OPERATOR],
    // Aborted with a host held past the point of no return: its manual procedure is still due.
    ['aborted', ['held', 'staged'], EXIT_NEEDS_OPERATOR],
  ])('%s with hosts %j exits %i', (state, hostStates, code) => {
    expect(watchExitCode({ state, hosts: hostStates.map(host) })).toBe(code);
  });
});
