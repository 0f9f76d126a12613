/** Where the benchmark finds the programs it runs. */
import path from 'node:path';

// Compiled, these modules sit in dist/scripts/bench/, three levels below the repository root.
export const ROOT = path.resolve(__dirname, '../../..');
export const CONVOY = path.join(ROOT, 'bin/convoy.js');
export const CONVOY_AGENT = path.join(ROOT, 'bin/convoy-agent.js');
export const SWARM = path.join(__dirname, 'agent-swarm.js');
