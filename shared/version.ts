/**
 * The Convoy build version, shared by controller and agent (kept equal to package.json by a test).
 * The agent bundle builder (`npm run build:agent -- --version X`) can stamp another version into
 * the bundle: that is how a release of the agent says what it is, and how the self-update test
 * builds a "B" beside the running "A" from one source tree.
 */
declare const __CONVOY_VERSION__: string | undefined;

const SOURCE_VERSION = '0.1.0';

export const CONVOY_VERSION: string =
  typeof __CONVOY_VERSION__ === 'string' ? __CONVOY_VERSION__ : SOURCE_VERSION;
