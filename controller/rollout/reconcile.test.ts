import { decideReconcile, type JournalView } from './reconcile';

const expected = { runId: 'r-1-u', phase: 'upgrade' };
const journal = (over: Partial<JournalView>): JournalView => ({
  runId: 'r-1-u',
  phase: 'upgrade',
  state: 'running',
  completed: [],
  ...over,
});

describe('reconcile › every row', () => {
  it.each([
    ['offline', false, journal({}), 'offline'],
    ['no answer to status', true, undefined, 'no-answer'],
    ['no journal at all (never received)', true, null, 'resend'],
    ['this run and phase, running', true, journal({ state: 'running' }), 'running'],
    ['this run and phase, succeeded', true, journal({ state: 'succeeded' }), 'finished'],
    ['this run and phase, failed', true, journal({ state: 'failed' }), 'finished'],
    ['this run and phase, interrupted by a crash', true, journal({ state: 'interrupted' }), 'resend'],
    ['another run', true, journal({ runId: 'r-1-s', state: 'succeeded' }), 'resend'],
    ['another phase of this run', true, journal({ phase: 'download', state: 'succeeded' }), 'resend'],
    ['another run, still running (the agent is busy)', true, journal({ runId: 'op-1' }), 'busy'],
    ['another phase of this run, still running', true, journal({ phase: 'download' }), 'busy'],
  ] as const)('%s: %s', (_what, online, j, kind) => {
    expect(decideReconcile(online, j, expected).kind).toBe(kind);
  });

  it('takes the outcome the journal recorded', () => {
    expect(decideReconcile(true, journal({ state: 'succeeded' }), expected)).toEqual({
      kind: 'finished',
      ok: true,
    });
    expect(decideReconcile(true, journal({ state: 'failed' }), expected)).toEqual({
      kind: 'finished',
      ok: false,
    });
  });
});
