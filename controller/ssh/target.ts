/**
 * `USER@HOST[:PORT]` as `--ssh` takes it. Host and user are checked against strict grammars here,
 * before anything connects: they are data, and never reach a shell (commands run over SSH are
 * fixed, see remote-agent.ts), but a name that is not a host name is a typo or an attack either way.
 */
import { ConvoyError } from '../../shared/errors';

export interface SshTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
}

const USER = /^[a-z_][a-z0-9_.-]{0,31}$/i;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;

export function parseSshTarget(text: string, flag = '--ssh'): SshTarget {
  const bad = (why: string): ConvoyError =>
    new ConvoyError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(text)}: ${why}`, {
      field: flag.replace(/^--/, ''),
    });
  const at = text.lastIndexOf('@');
  if (at <= 0) throw bad('must be USER@HOST[:PORT]');
  const user = text.slice(0, at);
  let rest = text.slice(at + 1);
  if (!USER.test(user)) throw bad(`${JSON.stringify(user)} is not a user name`);
  let port = 22;
  let host: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw bad('an IPv6 address must be closed with ]');
    host = rest.slice(1, close);
    rest = rest.slice(close + 1);
    if (!IPV6.test(host) || !host.includes(':')) throw bad(`${JSON.stringify(host)} is not an IPv6 address`);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw bad('expected :PORT after ]');
      port = parsePort(rest.slice(1), bad);
    }
  } else {
    const colon = rest.lastIndexOf(':');
    host = colon < 0 ? rest : rest.slice(0, colon);
    if (colon >= 0) port = parsePort(rest.slice(colon + 1), bad);
    if (!HOSTNAME.test(host)) throw bad(`${JSON.stringify(host)} is not a host name or address`);
  }
  return { user, host, port };
}

function parsePort(text: string, bad: (why: string) => ConvoyError): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw bad(`${JSON.stringify(text)} is not a port`);
  return port;
}

export function showTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user}@${host}${t.port === 22 ? '' : `:${t.port}`}`;
}
