/**
 * exec, service, maintenance and http steps against real programs, real files and a real HTTP
 * server on 127.0.0.1:0; nothing is mocked.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execExecutor } from '../../agent/steps/exec';
import { httpExecutor } from '../../agent/steps/http';
import { maintenanceExecutor } from '../../agent/steps/maintenance';
import { createServiceExecutor } from '../../agent/steps/service';
import type { ExecStep, HttpStep, MaintenanceStep, ServiceStep } from '../../shared/recipe/types';
import { tempDir } from '../helpers/processes';
import { stepBase, stepContext } from '../helpers/step-context';
import { waitFor } from '../helpers/wait';
import { sendJson, startServer, type TestServer } from './steps-http';

const NODE = process.execPath;
const SECRET = 'canary-Zq8-s3cret';

function execStep(argv: readonly string[], extra: Partial<ExecStep> = {}): ExecStep {
  return {
    ...stepBase('run'),
    type: 'exec',
    argv,
    env: {},
    acceptExitCodes: [0],
    onInterrupt: 'rollback',
    ...extra,
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('exec step', () => {
  it('runs an argv with the step env and cwd and keeps the output tail', async () => {
    const cwd = tempDir('exec-cwd');
    const step = execStep([NODE, '-e', 'console.log(process.cwd(), process.env.GREETING)'], {
      env: { GREETING: 'hello' },
      cwd,
    });
    const result = await execExecutor.run(step, stepContext());
    expect(result).toMatchObject({ ok: true, exitCode: 0, outputTail: `${cwd} hello\n` });
  });

  it('accepts the exit codes the step lists and fails on others', async () => {
    const argv = [NODE, '-e', 'console.error("disk full"); process.exit(3)'];
    const accepted = await execExecutor.run(execStep(argv, { acceptExitCodes: [0, 3] }), stepContext());
    expect(accepted).toMatchObject({ ok: true, exitCode: 3 });
    const refused = await execExecutor.run(execStep(argv), stepContext());
    expect(refused).toMatchObject({
      ok: false,
      exitCode: 3,
      error: { code: 'STEP_FAILED', message: `${NODE} exited with code 3: disk full` },
    });
  });

  it('kills a program that outlives its timeout, even one that ignores SIGTERM', async () => {
    const pidFile = path.join(tempDir('exec-timeout'), 'pid');
    const script = `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`;
    const result = await execExecutor.run(execStep([NODE, '-e', script], { timeoutMs: 500 }), stepContext());
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('STEP_TIMEOUT');
    expect(result.durationMs).toBeLessThan(10_000);
    expect(isAlive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('hands the stdin secret to the child without putting it on its argv or env, and masks it', async () => {
    const dir = tempDir('exec-secret');
    const pidFile = path.join(dir, 'pid');
    const gotFile = path.join(dir, 'got');
    // Waits before reading stdin, so the test can look at the running child from outside.
    const script = `const fs = require('fs');
      fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      setTimeout(() => {
        const secret = fs.readFileSync(0, 'utf8');
        fs.writeFileSync(${JSON.stringify(gotFile)}, secret);
        console.log('connected with password ' + secret);
        console.error('auth failed for ' + secret);
        process.exit(1);
      }, 300);`;
    const ctx = stepContext({ secrets: new Map([['db_password', SECRET]]) });
    const running = execExecutor.run(execStep([NODE, '-e', script], { stdinSecret: 'db_password' }), ctx);
    const pid = await waitFor('the child pid', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8'));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    const result = await running;

    expect(cmdline).toContain('connected with password');
    expect(cmdline).not.toContain(SECRET);
    expect(environ).not.toContain(SECRET);
    expect(readFileSync(gotFile, 'utf8')).toBe(SECRET);
    expect(JSON.stringify(result)).not.toContain(SECRET);
    expect(result.outputTail).toContain('connected with password [redacted]');
    expect(result.error?.message).toContain('auth failed for [redacted]');
  });

  it('masks every secret the host knows, not only the one the step uses', async () => {
    const ctx = stepContext({ secrets: new Map([['other', SECRET]]) });
    const result = await execExecutor.run(execStep(['echo', `leaked ${SECRET}`]), ctx);
    expect(result).toMatchObject({ ok: true, outputTail: 'leaked [redacted]\n' });
  });

  it('refuses a stdin secret the host does not define, naming it', async () => {
    const result = await execExecutor.run(execStep(['cat'], { stdinSecret: 'nope' }), stepContext());
    expect(result.error).toEqual({
      code: 'SECRET_UNKNOWN',
      message: 'secret "nope" is not defined on this host',
    });
  });
});

describe('exec step as a user, and expecting a version', () => {
  it('runs the program with the uid, gid and HOME of the user it names', async () => {
    const result = await execExecutor.run(
      execStep(['sh', '-c', 'echo "$(id -u) $(id -g) $HOME $USER"'], { user: 'www-data' }),
      stepContext(),
    );
    expect(result).toMatchObject({ ok: true });
    expect(result.outputTail).toBe('33 33 /var/www www-data\n');
  });

  it('refuses a user the host does not have, before running anything', async () => {
    const marker = path.join(tempDir('exec-user'), 'ran');
    const result = await execExecutor.run(
      execStep(['touch', marker], { user: 'convoy-no-such-user' }),
      stepContext(),
    );
    expect(result.error).toEqual({
      code: 'EXEC_USER_UNKNOWN',
      message: 'user "convoy-no-such-user" does not exist on this host',
    });
    expect(existsSync(marker)).toBe(false);
  });

  it('with expectVersion, fails a program that exits 0 without naming that exact version', async () => {
    const says = (text: string, version: string) =>
      execExecutor.run(execStep(['echo', text], { expectVersion: version }), stepContext());
    expect(await says('Pydio Cells v1.6.3', '1.6.3')).toMatchObject({ ok: true, versions: ['1.6.3'] });
    for (const [text, version] of [
      ['Pydio Cells v1.6.30', '1.6.3'],
      ['Pydio Cells v11.6.3', '1.6.3'],
      ['Pydio Cells v1.6.3.1', '1.6.3'],
      ['Pydio Cells v1x6x3', '1.6.3'],
    ] as const) {
      const result = await says(text, version);
      expect({ text, error: result.error?.message }).toEqual({
        text,
        error: `echo does not report version ${version}: ${text}`,
      });
    }
  });
});

describe('service step', () => {
  const noSystemd = createServiceExecutor({ systemdMarker: '/nonexistent/convoy-test' });

  function serviceStep(action: ServiceStep['action'], commands?: ServiceStep['commands']): ServiceStep {
    return {
      ...stepBase(`svc-${action}`),
      type: 'service',
      action,
      name: 'app',
      ...(commands ? { commands } : {}),
    };
  }

  it('without systemd runs the step commands for start, status and stop', async () => {
    const flag = path.join(tempDir('svc'), 'running');
    const commands = {
      start: ['touch', flag],
      stop: ['rm', '-f', flag],
      status: ['test', '-e', flag],
    };
    const ctx = stepContext();
    expect((await noSystemd.run(serviceStep('start', commands), ctx)).ok).toBe(true);
    expect((await noSystemd.run(serviceStep('status', commands), ctx)).ok).toBe(true);
    expect((await noSystemd.run(serviceStep('stop', commands), ctx)).ok).toBe(true);
    expect(existsSync(flag)).toBe(false);
    const status = await noSystemd.run(serviceStep('status', commands), ctx);
    expect(status).toMatchObject({ ok: false, exitCode: 1, error: { code: 'STEP_FAILED' } });
  });

  it('without systemd and without a command fails and says so, naming the step', async () => {
    const result = await noSystemd.run(serviceStep('restart', { start: ['true'] }), stepContext());
    expect(result.error).toEqual({
      code: 'SERVICE_COMMAND_MISSING',
      message:
        'step svc-restart: systemd is not running on this host and the step gives no command to restart app (set commands.restart, or the recipe var it names)',
    });
  });

  it('preflight: no systemd and no command, or an empty one (a var left at its default), is refused before the phase', () => {
    const missing = {
      code: 'SERVICE_COMMAND_MISSING',
      message: expect.stringContaining('step svc-stop:') as unknown,
    };
    expect(noSystemd.preflight?.(serviceStep('stop'))).toEqual(missing);
    expect(noSystemd.preflight?.(serviceStep('stop', { stop: [''] }))).toEqual(missing);
    expect(noSystemd.preflight?.(serviceStep('stop', { stop: ['/usr/sbin/stop-app'] }))).toBeUndefined();
    const withSystemd = createServiceExecutor({ systemdMarker: tempDir('svc-marker') });
    expect(withSystemd.preflight?.(serviceStep('stop', { stop: [''] }))).toBeUndefined();
  });

  it('with systemd goes through systemctl, ending options before the unit name', async () => {
    const dir = tempDir('svc-systemd');
    const log = path.join(dir, 'calls');
    writeFileSync(path.join(dir, 'systemctl'), `#!/bin/sh\necho "$@" >> ${log}\n`);
    chmodSync(path.join(dir, 'systemctl'), 0o755);
    const withSystemd = createServiceExecutor({ systemdMarker: dir });
    const ctx = stepContext({ env: { PATH: `${dir}:${process.env['PATH'] ?? ''}` } });
    expect((await withSystemd.run(serviceStep('restart', { restart: ['false'] }), ctx)).ok).toBe(true);
    expect((await withSystemd.run(serviceStep('status'), ctx)).ok).toBe(true);
    expect(readFileSync(log, 'utf8')).toBe('restart -- app\nis-active -- app\n');
  });
});

describe('maintenance step', () => {
  let server: TestServer;
  let status = 204;
  beforeAll(async () => {
    server = await startServer((_req, res) => {
      res.writeHead(status);
      res.end();
    });
  });
  afterAll(() => server.close());

  function maintenance(action: 'on' | 'off', way: Partial<MaintenanceStep>): MaintenanceStep {
    return { ...stepBase(`maint-${action}`), type: 'maintenance', action, ...way };
  }

  it('switches a flag file on and off, and each twice is harmless', async () => {
    const flagFile = path.join(tempDir('maint'), 'sub', 'MAINTENANCE');
    const ctx = stepContext();
    for (let i = 0; i < 2; i++) {
      expect((await maintenanceExecutor.run(maintenance('on', { flagFile }), ctx)).ok).toBe(true);
      expect(readFileSync(flagFile, 'utf8')).toMatch(/^maintenance mode switched on by convoy at \d{4}-/);
    }
    for (let i = 0; i < 2; i++) {
      expect((await maintenanceExecutor.run(maintenance('off', { flagFile }), ctx)).ok).toBe(true);
      expect(existsSync(flagFile)).toBe(false);
    }
  });

  it('switches over HTTP with PUT for on and DELETE for off', async () => {
    status = 204;
    const url = `${server.origin}/admin/maintenance`;
    expect((await maintenanceExecutor.run(maintenance('on', { url }), stepContext())).ok).toBe(true);
    expect((await maintenanceExecutor.run(maintenance('off', { url }), stepContext())).ok).toBe(true);
    expect(server.seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      'PUT /admin/maintenance',
      'DELETE /admin/maintenance',
    ]);
    status = 500;
    const failed = await maintenanceExecutor.run(maintenance('on', { url }), stepContext());
    expect(failed.error).toEqual({ code: 'STEP_FAILED', message: `PUT ${url} answered 500` });
  });

  it('runs a command, and refuses a step with no way or two ways', async () => {
    const flag = path.join(tempDir('maint-argv'), 'on');
    expect(
      (await maintenanceExecutor.run(maintenance('on', { argv: ['touch', flag] }), stepContext())).ok,
    ).toBe(true);
    expect(existsSync(flag)).toBe(true);
    for (const way of [{}, { argv: ['true'], flagFile: flag }]) {
      const result = await maintenanceExecutor.run(maintenance('on', way), stepContext());
      expect(result.error?.code).toBe('STEP_FAILED');
    }
  });
});

describe('http step', () => {
  function httpStep(url: string, extra: Partial<HttpStep> = {}): HttpStep {
    return {
      ...stepBase('health'),
      type: 'http',
      action: 'check',
      url,
      method: 'GET',
      expectStatus: [200],
      backoffMs: 50,
      ...extra,
    };
  }

  it('check retries until the application is healthy', async () => {
    let calls = 0;
    const server = await startServer((_req, res) => {
      calls += 1;
      if (calls < 3) sendJson(res, 503, { status: { db: 'starting' } });
      else sendJson(res, 200, { status: { db: 'ok' }, version: '2.0.0' });
    });
    try {
      const step = httpStep(`${server.origin}/health`, { jsonField: { path: 'status.db', equals: 'ok' } });
      const result = await httpExecutor.run(step, stepContext());
      expect(result).toMatchObject({ ok: true, data: { status: 200, attempts: 3 } });
    } finally {
      await server.close();
    }
  });

  it('check fails when the application keeps answering 500', async () => {
    const server = await startServer((_req, res) => sendJson(res, 500, { error: 'boom' }));
    try {
      const result = await httpExecutor.run(
        httpStep(`${server.origin}/health`, { timeoutMs: 500 }),
        stepContext(),
      );
      expect(result.ok).toBe(false);
      expect(result.error?.code).toBe('HEALTH_CHECK_FAILED');
      expect(result.error?.message).toMatch(/was not healthy after \d+ attempt\(s\) in 500 ms: status 500$/);
      expect(server.seen.length).toBeGreaterThan(1);
    } finally {
      await server.close();
    }
  });

  it('check that ends on an unanswered attempt still names what the application last said', async () => {
    let calls = 0;
    const server = await startServer((_req, res) => {
      calls += 1;
      if (calls === 1) sendJson(res, 500, { error: 'boom' });
      // Later attempts never get an answer: the application hangs.
    });
    try {
      const result = await httpExecutor.run(
        httpStep(`${server.origin}/health`, { timeoutMs: 400 }),
        stepContext(),
      );
      expect(result.error?.code).toBe('HEALTH_CHECK_FAILED');
      expect(result.error?.message).toMatch(
        /was not healthy after 2 attempt\(s\) in 400 ms: 127\.0\.0\.1:\d+ did not answer within \d+ ms; last answer: status 500$/,
      );
      expect(server.seen).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('check fails when the JSON field does not match', async () => {
    const server = await startServer((_req, res) => sendJson(res, 200, { version: '1.9.0' }));
    try {
      const step = httpStep(`${server.origin}/version`, {
        timeoutMs: 300,
        jsonField: { path: 'version', equals: '2.0.0' },
      });
      const result = await httpExecutor.run(step, stepContext());
      expect(result.error?.code).toBe('HEALTH_CHECK_FAILED');
      expect(result.error?.message).toContain('version is "1.9.0", not "2.0.0"');
    } finally {
      await server.close();
    }
  });

  it('request sends method, JSON body and basic auth, and never shows the password', async () => {
    // A hostile endpoint that echoes the credentials back.
    const server = await startServer((req, res) =>
      sendJson(res, 201, { youSent: req.headers['authorization'] }),
    );
    try {
      const step = httpStep(`${server.origin}/hooks/upgraded`, {
        action: 'request',
        method: 'POST',
        body: '{"version":"2.0.0"}',
        expectStatus: [201],
        basicAuth: { user: 'convoy', passwordSecret: 'hook_password' },
      });
      const ctx = stepContext({ secrets: new Map([['hook_password', SECRET]]) });
      const result = await httpExecutor.run(step, ctx);
      expect(result.ok).toBe(true);
      const seen = server.seen[0]!;
      expect(seen.method).toBe('POST');
      expect(seen.body).toBe('{"version":"2.0.0"}');
      expect(seen.headers['content-type']).toBe('application/json; charset=utf-8');
      const token = Buffer.from(`convoy:${SECRET}`).toString('base64');
      expect(seen.headers['authorization']).toBe(`Basic ${token}`);
      expect(JSON.stringify(result)).not.toContain(SECRET);
      expect(JSON.stringify(result)).not.toContain(token);
      expect(result.outputTail).toBe('{"youSent":"Basic [redacted]"}');
    } finally {
      await server.close();
    }
  });

  it('request fails on a status it does not expect', async () => {
    const server = await startServer((_req, res) => sendJson(res, 409, { error: 'conflict' }));
    try {
      const step = httpStep(`${server.origin}/x`, { action: 'request', method: 'PUT', expectStatus: [] });
      const result = await httpExecutor.run(step, stepContext());
      expect(result).toMatchObject({
        ok: false,
        error: { code: 'STEP_FAILED' },
        outputTail: '{"error":"conflict"}',
      });
    } finally {
      await server.close();
    }
  });
});
