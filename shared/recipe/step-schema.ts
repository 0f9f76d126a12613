/**
 * The schema of one recipe step, per type: a declarative table mirroring ./types.ts. The YAML
 * names are the TypeScript names except `timeout` (-> `timeoutMs`) and http's `backoff`
 * (-> `backoffMs`). Checks that need the whole recipe (ids, references, secrets, placeholders)
 * live in ./cross-checks.ts.
 */
import semver from 'semver';
import {
  arrayOf,
  at,
  bool,
  duration,
  enumOf,
  from,
  int,
  literal,
  matching,
  nonEmptyStr,
  object,
  oneOrMany,
  oneOfByField,
  recordOf,
  refine,
  spec,
  str,
  withDefault,
  type Spec,
} from '../schema';
import type { Step, StepCondition, StepType } from './types';

const MINUTE = 60_000;

/** Default bound on one attempt, per step type (docs/recipes.md repeats this table). */
export const DEFAULT_TIMEOUT_MS: Readonly<Record<StepType, number>> = Object.freeze({
  exec: 10 * MINUTE,
  apt: 30 * MINUTE,
  dnf: 30 * MINUTE,
  git: 5 * MINUTE,
  service: 2 * MINUTE,
  maintenance: 1 * MINUTE,
  backup: 30 * MINUTE,
  restore: 30 * MINUTE,
  artifact: 30 * MINUTE,
  'binary.replace': 2 * MINUTE,
  'binary.restore': 2 * MINUTE,
  'agent.restart': 2 * MINUTE,
  // The bound on the host coming back: the agent waits it out, the controller too.
  reboot: 15 * MINUTE,
  http: 1 * MINUTE,
});

export const MAX_TIMEOUT_MS = 24 * 60 * MINUTE;
export const MAX_RETRIES = 10;
export const DEFAULT_ARTIFACT_MAX_BYTES = 1024 * 1024 * 1024;

// Ids name journal entries and backups on the host, so they keep to file-name characters.
export const STEP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** An artifact's file name in the staging directory: no `/`, no `..`, no `%`, no NUL. */
export const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const stepId = (): Spec<string> =>
  matching(STEP_ID, 'letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)');
// The message never echoes the value: a secret pasted here by mistake must not reach a log.
export const secretName = (): Spec<string> =>
  matching(SECRET_NAME, 'a secret name (letters, digits, "_", "." or "-"), not a value');

/** A program and its arguments: a non-empty list of non-empty strings (never a shell line). */
export const argv = (): Spec<string[]> => arrayOf(nonEmptyStr(), { min: 1 });

export const artifactName = (): Spec<string> =>
  refine(str(), (v) =>
    v === '.' || v === '..' || !ARTIFACT_NAME.test(v)
      ? 'must be a plain file name: letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128 (no "/", "..", "%" or NUL)'
      : null,
  );

/** An http(s) URL, or one that starts with a placeholder (`{{var.base}}/x`) and is checked when substituted. */
export const url = (): Spec<string> => matching(/^(?:https?:\/\/[^\s/]|\{\{)/, 'an http:// or https:// URL');

const condition: Spec<StepCondition> = object(
  {
    role: oneOrMany(nonEmptyStr(), { min: 1 }),
    notRole: oneOrMany(nonEmptyStr(), { min: 1 }),
    installed: refine(nonEmptyStr(), (v) =>
      semver.validRange(v) === null ? 'must be a semver range (">=4.1.0")' : null,
    ),
    onTarget: bool(),
  },
  {
    optional: ['role', 'notRole', 'installed', 'onTarget'],
    check: (c, path, problems) => {
      if (Object.values(c).every((v) => v === undefined))
        problems.push({ path, message: 'must have role, notRole, installed or onTarget' });
    },
  },
);

/** Fields every step has; `type` and the default timeout depend on the step type. */
function common<T extends StepType>(type: T) {
  return {
    id: stepId(),
    type: literal(type),
    source: nonEmptyStr(),
    timeoutMs: from('timeout', withDefault(duration({ maxMs: MAX_TIMEOUT_MS }), DEFAULT_TIMEOUT_MS[type])),
    retries: withDefault(int({ min: 0, max: MAX_RETRIES }), 0),
    when: condition,
    pointOfNoReturn: bool(),
  };
}

const packages = () => withDefault(arrayOf(nonEmptyStr()), []);
const ENV_NAME = { re: /^[A-Za-z_][A-Za-z0-9_]*$/, what: 'an environment variable name' };

const exec = object(
  {
    ...common('exec'),
    argv: argv(),
    env: withDefault(recordOf(str(), ENV_NAME), {}),
    cwd: nonEmptyStr(),
    acceptExitCodes: withDefault(arrayOf(int({ min: 0, max: 255 }), { min: 1 }), [0]),
    stdinSecret: secretName(),
    onInterrupt: withDefault(enumOf(['redo', 'rollback']), 'rollback'),
    user: nonEmptyStr(),
    expectVersion: nonEmptyStr(),
  },
  { optional: ['when', 'pointOfNoReturn', 'cwd', 'stdinSecret', 'user', 'expectVersion'] },
);

const pin = object({ packages: arrayOf(nonEmptyStr(), { min: 1 }), version: nonEmptyStr() });

const apt = object(
  {
    ...common('apt'),
    action: enumOf(['update', 'listUpgradable', 'downloadOnly', 'upgrade', 'restorePrevious']),
    packages: packages(),
    frontend: withDefault(enumOf(['apt-get', 'aptitude']), 'apt-get'),
    pin,
    fromStep: stepId(),
  },
  {
    optional: ['when', 'pointOfNoReturn', 'pin', 'fromStep'],
    check: (s, path, problems) => {
      const restoring = s.action === 'restorePrevious';
      if (restoring && s.fromStep === undefined)
        problems.push({
          path,
          message: 'restorePrevious needs fromStep (the downloadOnly step that kept the packages)',
        });
      if (!restoring && s.fromStep !== undefined)
        problems.push({ path, message: 'fromStep is for restorePrevious only' });
      if ((restoring || s.action === 'update') && s.pin !== undefined)
        problems.push({ path, message: `pin does not apply to ${s.action}` });
    },
  },
);

/** dnf actions that take a pin; verifyPinned needs one, restorePrevious needs fromStep. */
const DNF_PINNED_ACTIONS: readonly string[] = ['listUpdates', 'downloadOnly', 'upgrade', 'verifyPinned'];

const dnf = object(
  {
    ...common('dnf'),
    action: enumOf([
      'makecache',
      'listUpdates',
      'downloadOnly',
      'upgrade',
      'restorePrevious',
      'verifyPinned',
    ]),
    packages: packages(),
    command: withDefault(enumOf(['yum', 'dnf']), 'yum'),
    pin,
    fromStep: stepId(),
  },
  {
    optional: ['when', 'pointOfNoReturn', 'pin', 'fromStep'],
    check: (s, path, problems) => {
      if (s.action === undefined) return;
      if (s.pin !== undefined && !DNF_PINNED_ACTIONS.includes(s.action))
        problems.push({ path: at(path, 'pin'), message: `is not used by action ${s.action}` });
      if (s.action === 'verifyPinned' && s.pin === undefined)
        problems.push({ path: at(path, 'pin'), message: 'is required by action verifyPinned' });
      if ((s.action === 'restorePrevious') !== (s.fromStep !== undefined))
        problems.push({
          path: at(path, 'fromStep'),
          message:
            s.action === 'restorePrevious'
              ? 'is required by action restorePrevious (the downloadOnly step that kept the packages)'
              : `is only used by action restorePrevious, not ${s.action}`,
        });
    },
  },
);

const git = object(
  {
    ...common('git'),
    action: enumOf(['fetchTags', 'checkoutTag']),
    dir: nonEmptyStr(),
    tagPattern: withDefault(nonEmptyStr(), 'v*'),
  },
  { optional: ['when', 'pointOfNoReturn'] },
);

const service = object(
  {
    ...common('service'),
    action: enumOf(['stop', 'start', 'restart', 'status']),
    name: nonEmptyStr(),
    commands: object(
      { stop: argv(), start: argv(), restart: argv(), status: argv() },
      { optional: ['stop', 'start', 'restart', 'status'] },
    ),
  },
  { optional: ['when', 'pointOfNoReturn', 'commands'] },
);

const maintenance = object(
  {
    ...common('maintenance'),
    action: enumOf(['on', 'off']),
    argv: argv(),
    flagFile: nonEmptyStr(),
    url: url(),
  },
  {
    optional: ['when', 'pointOfNoReturn', 'argv', 'flagFile', 'url'],
    check: (m, path, problems) => {
      const modes = (['argv', 'flagFile', 'url'] as const).filter((k) => m[k] !== undefined);
      if (modes.length !== 1) {
        const found = modes.length === 0 ? 'none' : modes.join(' and ');
        problems.push({ path, message: `must have exactly one of argv, flagFile or url (found ${found})` });
      }
    },
  },
);

const backup = object(
  {
    ...common('backup'),
    paths: withDefault(arrayOf(nonEmptyStr()), []),
    dumpArgv: argv(),
    dest: nonEmptyStr(),
  },
  {
    optional: ['when', 'pointOfNoReturn', 'dumpArgv'],
    check: (b, path, problems) => {
      if (b.paths?.length === 0 && b.dumpArgv === undefined)
        problems.push({ path, message: 'backs up nothing: give paths or dumpArgv' });
    },
  },
);

const restore = object(
  {
    ...common('restore'),
    fromStep: stepId(),
    loadArgv: argv(),
    user: nonEmptyStr(),
    whenMissing: enumOf(['fail', 'skip']),
  },
  { optional: ['when', 'pointOfNoReturn', 'loadArgv', 'user', 'whenMissing'] },
);

const artifact = object(
  {
    ...common('artifact'),
    url: url(),
    name: artifactName(),
    maxBytes: withDefault(int({ min: 1 }), DEFAULT_ARTIFACT_MAX_BYTES),
    sha256Url: url(),
    signatureUrl: url(),
  },
  { optional: ['when', 'pointOfNoReturn', 'sha256Url'] },
);

const binaryReplace = object(
  { ...common('binary.replace'), fromStep: stepId(), target: nonEmptyStr(), setcap: nonEmptyStr() },
  { optional: ['when', 'pointOfNoReturn', 'setcap'] },
);

const binaryRestore = object(
  { ...common('binary.restore'), fromStep: stepId(), target: nonEmptyStr() },
  { optional: ['when', 'pointOfNoReturn'] },
);

const agentRestart = object({ ...common('agent.restart') }, { optional: ['when', 'pointOfNoReturn'] });

const reboot = object(
  { ...common('reboot'), reboot: enumOf(['ifRequired', 'always']), command: argv() },
  { optional: ['when', 'pointOfNoReturn', 'command'] },
);

const jsonValue = spec<string | number | boolean>((v) =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
    ? { ok: v }
    : 'must be a string, number or boolean',
);

const http = object(
  {
    ...common('http'),
    action: enumOf(['check', 'request']),
    url: url(),
    method: withDefault(enumOf(['GET', 'POST', 'PUT']), 'GET'),
    expectStatus: withDefault(arrayOf(int({ min: 100, max: 599 }), { min: 1 }), [200]),
    jsonField: object({ path: nonEmptyStr(), equals: jsonValue }),
    body: str(),
    basicAuth: object({ user: nonEmptyStr(), passwordSecret: secretName() }),
    backoffMs: from('backoff', withDefault(duration({ maxMs: 10 * MINUTE }), 1000)),
  },
  { optional: ['when', 'pointOfNoReturn', 'jsonField', 'body', 'basicAuth'] },
);

/** Any step, by its `type`. The annotation makes the compiler prove each variant matches types.ts. */
export const STEP: Spec<Step> = oneOfByField('type', {
  exec,
  apt,
  dnf,
  git,
  service,
  maintenance,
  backup,
  restore,
  artifact,
  'binary.replace': binaryReplace,
  'binary.restore': binaryRestore,
  'agent.restart': agentRestart,
  reboot,
  http,
});
