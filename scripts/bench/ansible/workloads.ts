/**
 * The work both sides do, defined once: the package set, the two Convoy recipes, and the Ansible
 * playbooks built from the very argv lists the Convoy agent runs (the staged upgrade's apt
 * commands come from the compiled recipe through agent/steps/apt's `aptArgv`), so that the two
 * sides run the same commands on each host and differ only in how they get there.
 *
 *   noop     Ansible: ansible.builtin.ping          Convoy: convoy ping (a signed no-op)
 *   check    3 commands, read-only: installed versions, candidate versions, simulated upgrade
 *   staged   download (apt-get update, apt-get --download-only), then install from the cache only
 *
 * Commands act on each host's isolated apt root through APT_CONFIG and DPKG_ADMINDIR in their
 * environment: the agents are started with them, Ansible sets them per host from the inventory.
 */
import YAML from 'yaml';
import { aptArgv } from '../../../agent/steps/apt';
import { compileRecipe } from '../../../shared/recipe/compile';
import type { Step } from '../../../shared/recipe/types';

export const PACKAGES = ['convoy-bench-a', 'convoy-bench-b', 'convoy-bench-c'] as const;
export const FROM = '1.0.0';
export const TO = '1.0.1';
export const LABEL = 'bench=ansible';
export const DEPLOYMENT = 'ansible-bench-upgrade';
/** Shared objects must be written out in full: recipes refuse YAML aliases. */
const NO_ALIASES = { aliasDuplicateObjects: false } as const;
const SOURCE = 'docs/benchmarks.md, "Against Ansible": the same command on both sides';

/** Host-tasks per host of each workload: what "per host-task" divides by. */
export const TASKS_PER_HOST = { noop: 1, check: 3, staged: 3 } as const;

export const CHECK_ARGVS: readonly (readonly string[])[] = [
  ['dpkg-query', '-W', '-f=${Package} ${Version}\\n', ...PACKAGES],
  ['apt-cache', 'policy', ...PACKAGES],
  ['apt-get', '--simulate', '-y', 'install', '--only-upgrade', ...PACKAGES],
];

const VERSIONS = {
  installed: {
    argv: ['dpkg-query', '-W', '-f=${Version}', PACKAGES[0]],
    pattern: '^([0-9]+\\.[0-9]+\\.[0-9]+)',
  },
  available: { argv: ['apt-cache', 'madison', PACKAGES[0]], pattern: '\\|\\s*([0-9]+\\.[0-9]+\\.[0-9]+)' },
};

function recipeYaml(recipe: Record<string, unknown>): string {
  const yaml = YAML.stringify(recipe, NO_ALIASES);
  compileRecipe(yaml, `${String(recipe['name'])}.yaml`); // every problem now, not at the first run
  return yaml;
}

/** The recipe whose `check` phase is the three commands, run by `convoy phase run --select`. */
export function checkRecipeYaml(): string {
  return recipeYaml({
    name: 'ansible-bench-check',
    description: 'Three read-only commands per host, as the Ansible play runs them',
    versions: VERSIONS,
    phases: {
      check: CHECK_ARGVS.map((argv, i) => ({ id: `check-${i + 1}`, type: 'exec', argv, source: SOURCE })),
    },
  });
}

/** The staged upgrade: `download` stages with apt, `upgrade` installs from the cache only. */
export function stagedRecipeYaml(): string {
  const packages = [...PACKAGES];
  return recipeYaml({
    name: 'ansible-bench-staged',
    description: 'Three small packages, staged with apt then installed from the cache',
    versions: VERSIONS,
    policy: { majorNeedsApproval: true, allowDowngrade: false },
    phases: {
      download: [
        { id: 'stage-refresh', type: 'apt', action: 'update', source: SOURCE },
        { id: 'stage-packages', type: 'apt', action: 'downloadOnly', packages, source: SOURCE },
      ],
      upgrade: [{ id: 'apply-packages', type: 'apt', action: 'upgrade', packages, source: SOURCE }],
    },
  });
}

/** The argv the agent runs for each apt step of the staged recipe, in order. */
export function stagedArgvs(): { download: string[][]; install: string[][] } {
  const recipe = compileRecipe(stagedRecipeYaml(), 'ansible-bench-staged.yaml');
  const argvs = (steps: readonly Step[]): string[][] =>
    steps.map((s) => {
      if (s.type !== 'apt') throw new Error(`staged recipe: step ${s.id} is not an apt step`);
      return aptArgv(s);
    });
  return { download: argvs(recipe.phases.download), install: argvs(recipe.phases.upgrade) };
}

const PLAY_ENV = {
  APT_CONFIG: '{{ apt_config }}',
  DPKG_ADMINDIR: '{{ dpkg_admindir }}',
  DEBIAN_FRONTEND: 'noninteractive',
};

function commandPlay(name: string, argvs: readonly (readonly string[])[]): Record<string, unknown> {
  return {
    name,
    hosts: 'bench',
    gather_facts: false,
    environment: PLAY_ENV,
    tasks: argvs.map((argv, i) => ({ name: `${name} ${i + 1}`, 'ansible.builtin.command': { argv } })),
  };
}

/** The playbook of each workload. */
export function playbookYaml(workload: 'noop' | 'check' | 'staged'): string {
  switch (workload) {
    case 'noop':
      return YAML.stringify(
        [
          {
            name: 'noop',
            hosts: 'bench',
            gather_facts: false,
            tasks: [{ name: 'ping', 'ansible.builtin.ping': {} }],
          },
        ],
        NO_ALIASES,
      );
    case 'check':
      return YAML.stringify([commandPlay('check', CHECK_ARGVS)], NO_ALIASES);
    case 'staged': {
      const { download, install } = stagedArgvs();
      return YAML.stringify([commandPlay('download', download), commandPlay('install', install)], NO_ALIASES);
    }
  }
}
