/**
 * One SSH session to a host, with the host key pinned: connect, run a fixed command (optionally
 * feeding it stdin), upload a file over SFTP, remove what was uploaded. Failures become catalogue
 * errors that name the host: HOST_KEY_UNKNOWN / HOST_KEY_MISMATCH (before authentication),
 * SSH_AUTH_FAILED, SSH_UNREACHABLE, REMOTE_COMMAND_FAILED.
 */
import { readFileSync } from 'node:fs';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { ConvoyError } from '../../shared/errors';
import { hostKeyError, judgeHostKey, type HostKeyPin, type HostKeyVerdict } from './host-key';
import { showTarget, type SshTarget } from './target';

export interface SshOptions {
  readonly target: SshTarget;
  readonly pin: HostKeyPin;
  /** A private key file; without one, the keys of the agent at SSH_AUTH_SOCK. */
  readonly identityFile?: string;
  readonly connectTimeoutMs?: number;
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const OUTPUT_LIMIT = 1024 * 1024;

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly where: string,
  ) {}

  static async open(options: SshOptions): Promise<SshSession> {
    const where = showTarget(options.target);
    const auth = authOf(options);
    const client = new Client();
    let verdict: HostKeyVerdict | undefined;
    let presented: Buffer | undefined;
    const config: ConnectConfig = {
      host: options.target.host,
      port: options.target.port,
      username: options.target.user,
      readyTimeout: options.connectTimeoutMs ?? 15_000,
      ...auth,
      // Called during key exchange, before any authentication: false ends the handshake there.
      hostVerifier: (key: Buffer): boolean => {
        presented = key;
        verdict = judgeHostKey(options.pin, key);
        return verdict === 'trusted';
      },
    };
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (err: Error & { level?: string }) => {
        client.end();
        if (verdict !== undefined && verdict !== 'trusted' && presented !== undefined) {
          return reject(hostKeyError(verdict, options.pin, presented, where));
        }
        if (err.level === 'client-authentication') {
          return reject(
            new ConvoyError(
              'SSH_AUTH_FAILED',
              `${where}: authentication refused for ${options.identityFile ?? 'the keys of SSH_AUTH_SOCK'}`,
            ),
          );
        }
        reject(new ConvoyError('SSH_UNREACHABLE', `${where}: ${err.message}`));
      });
      client.connect(config);
    });
    return new SshSession(client, where);
  }

  /** Runs `command` (already quoted: see remote-agent.ts) and collects its output, bounded. */
  exec(command: string, stdin?: string): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err !== undefined && err !== null) {
          return reject(
            new ConvoyError('SSH_UNREACHABLE', `${this.where}: cannot run a command: ${err.message}`),
          );
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let size = 0;
        const keep = (into: Buffer[]) => (c: Buffer) => {
          size += c.length;
          if (size <= OUTPUT_LIMIT) into.push(c);
        };
        stream.on('data', keep(out));
        stream.stderr.on('data', keep(errOut));
        let code: number | null = null;
        stream.on('exit', (c: number | null) => {
          code = c;
        });
        stream.on('close', () =>
          resolve({
            code,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errOut).toString('utf8'),
          }),
        );
        stream.end(stdin ?? '');
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) =>
      this.client.sftp((err, sftp) =>
        err !== undefined && err !== null
          ? reject(new ConvoyError('SSH_UNREACHABLE', `${this.where}: SFTP refused: ${err.message}`))
          : resolve(sftp),
      ),
    );
  }

  /** Creates `dir` (0700, must not exist) and writes `content` to `dir/name` (0600). */
  async upload(dir: string, name: string, content: Buffer): Promise<string> {
    const sftp = await this.sftp();
    const file = `${dir}/${name}`;
    try {
      await new Promise<void>((resolve, reject) =>
        sftp.mkdir(dir, { mode: 0o700 }, (e) => (e ? reject(e) : resolve())),
      );
      await new Promise<void>((resolve, reject) => {
        const ws = sftp.createWriteStream(file, { mode: 0o600 });
        ws.on('error', reject);
        ws.on('close', () => resolve());
        ws.end(content);
      });
    } catch (err) {
      throw new ConvoyError(
        'REMOTE_COMMAND_FAILED',
        `${this.where}: cannot upload ${file}: ${(err as Error).message}`,
      );
    } finally {
      sftp.end();
    }
    return file;
  }

  /** Removes what upload() made; best effort, since the result of the work is already known. */
  async removeUpload(dir: string, name: string): Promise<void> {
    const sftp = await this.sftp().catch(() => undefined);
    if (sftp === undefined) return;
    await new Promise<void>((resolve) => sftp.unlink(`${dir}/${name}`, () => resolve()));
    await new Promise<void>((resolve) => sftp.rmdir(dir, () => resolve()));
    sftp.end();
  }

  close(): void {
    this.client.end();
  }
}

function authOf(options: SshOptions): Pick<ConnectConfig, 'privateKey' | 'agent'> {
  if (options.identityFile !== undefined) {
    try {
      return { privateKey: readFileSync(options.identityFile) };
    } catch (err) {
      throw new ConvoyError(
        'INVALID_ARGUMENT',
        `--identity ${options.identityFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { file: options.identityFile },
      );
    }
  }
  const sock = process.env['SSH_AUTH_SOCK'];
  if (sock === undefined || sock === '') {
    throw new ConvoyError('INVALID_ARGUMENT', 'no --identity given and no SSH agent (SSH_AUTH_SOCK) to ask', {
      field: 'identity',
    });
  }
  return { agent: sock };
}
