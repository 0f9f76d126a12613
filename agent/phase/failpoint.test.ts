import { agentFailpointFromEnv, parseFailpoints } from './failpoint';

describe('agent failpoints', () => {
  it('parses before:/after: entries, comma-separated', () => {
    expect([...parseFailpoints('before:stage-packages, after:site-up,')]).toEqual([
      'before:stage-packages',
      'after:site-up',
    ]);
    expect(parseFailpoints('').size).toBe(0);
  });

  it.each(['inside:x', 'before:', 'before', 'after:../x', 'before:a b'])('refuses %p', (bad) => {
    expect(() => parseFailpoints(bad)).toThrow(/is not before:STEP, after:STEP or fail:STEP/);
  });

  it('does nothing when unset or for another boundary', () => {
    const kill = jest.spyOn(process, 'kill').mockImplementation(() => true);
    try {
      agentFailpointFromEnv({})('before', 'x');
      agentFailpointFromEnv({ CONVOY_AGENT_FAILPOINT: 'after:x' })('before', 'x');
      agentFailpointFromEnv({ CONVOY_AGENT_FAILPOINT: 'after:x' })('after', 'y');
      expect(kill).not.toHaveBeenCalled();
    } finally {
      kill.mockRestore();
    }
  });

  it('kills the process with SIGKILL at the named boundary, saying which', () => {
    const kill = jest.spyOn(process, 'kill').mockImplementation(() => true);
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      agentFailpointFromEnv({ CONVOY_AGENT_FAILPOINT: 'after:y,before:x' })('before', 'x');
      expect(kill.mock.calls).toEqual([[process.pid, 'SIGKILL']]);
      expect(write).toHaveBeenCalledWith('convoy-agent: failpoint before:x: killing the agent\n');
    } finally {
      kill.mockRestore();
      write.mockRestore();
    }
  });

  it('fail:STEP kills nothing and tells the runner to report that step failed', () => {
    const kill = jest.spyOn(process, 'kill').mockImplementation(() => true);
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const failpoint = agentFailpointFromEnv({ CONVOY_AGENT_FAILPOINT: 'fail:x' });
      expect(failpoint('fail', 'y')).toBeUndefined();
      expect(failpoint('before', 'x')).toBeUndefined();
      expect(failpoint('fail', 'x')).toBe(true);
      expect(kill).not.toHaveBeenCalled();
      expect(write).toHaveBeenCalledWith('convoy-agent: failpoint fail:x: the step reports failure\n');
    } finally {
      kill.mockRestore();
      write.mockRestore();
    }
  });
});
