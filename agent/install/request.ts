/**
 * What `convoy hosts enroll --ssh` asks the remote agent bundle to do, sent as one JSON object
 * on the command's stdin: the enrollment token travels inside the encrypted SSH channel only,
 * never on a command line, in a file or in a log, and host names and labels stay data.
 */
import { ConvoyError } from '../../shared/errors';
import { parsePublicKey } from '../../shared/keys';
import { isAddress } from '../config';

export interface InstallRequest {
  /** `probe` reports what is installed and changes nothing. */
  readonly action: 'probe' | 'install' | 'uninstall';
  readonly controller: string;
  readonly controllerKey: string;
  readonly token?: string;
  readonly hostname?: string;
  /** Release keys to pin; absent: keep what an existing enrollment pins (none for a new one). */
  readonly releaseKeys?: readonly string[];
  /** The node binary the unit or supervisor runs; default: the one running this. */
  readonly node?: string;
}

const FIELDS = new Set(['action', 'controller', 'controllerKey', 'token', 'hostname', 'releaseKeys', 'node']);
const MAX_BYTES = 64 * 1024;

export function parseInstallRequest(text: string): InstallRequest {
  const bad = (message: string, field?: string): ConvoyError =>
    new ConvoyError('INVALID_ARGUMENT', `install request: ${message}`, field === undefined ? {} : { field });
  if (Buffer.byteLength(text) > MAX_BYTES) throw bad(`larger than ${MAX_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('must be a JSON object');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r))
    if (!FIELDS.has(key)) throw bad(`unknown field ${JSON.stringify(key)}`, key);
  const str = (field: string, required: boolean): string | undefined => {
    const v = r[field];
    if (v === undefined) {
      if (required) throw bad(`${field} is required`, field);
      return undefined;
    }
    if (typeof v !== 'string' || v === '' || v.length > 4096)
      throw bad(`${field} must be a non-empty string`, field);
    return v;
  };
  const action = str('action', true);
  if (action !== 'probe' && action !== 'install' && action !== 'uninstall')
    throw bad('action must be probe, install or uninstall', 'action');
  // A probe may come without them: decommission only asks which host this is.
  const controller = str('controller', action === 'install') ?? '';
  if (controller !== '' && !isAddress(controller))
    throw bad('controller must be host:port or unix:/path', 'controller');
  const controllerKey = str('controllerKey', action === 'install') ?? '';
  if (controllerKey !== '' && parsePublicKey(controllerKey) === null)
    throw bad('controllerKey must be an Ed25519 public key (ed25519:<base64>)', 'controllerKey');
  const releaseKeys = r['releaseKeys'];
  if (
    releaseKeys !== undefined &&
    (!Array.isArray(releaseKeys) ||
      releaseKeys.some((k) => typeof k !== 'string' || parsePublicKey(k) === null))
  )
    throw bad('releaseKeys must be a list of Ed25519 public keys', 'releaseKeys');
  const token = str('token', false);
  const hostname = str('hostname', false);
  const node = str('node', false);
  if (node !== undefined && !node.startsWith('/')) throw bad('node must be an absolute path', 'node');
  return {
    action,
    controller,
    controllerKey,
    ...(releaseKeys === undefined ? {} : { releaseKeys: releaseKeys as string[] }),
    ...(token === undefined ? {} : { token }),
    ...(hostname === undefined ? {} : { hostname }),
    ...(node === undefined ? {} : { node }),
  };
}
