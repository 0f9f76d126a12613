/** The Convoy build version, shared by controller and agent (kept equal to package.json by a test). */
export const CONVOY_VERSION = '0.1.0';
