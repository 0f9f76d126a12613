/**
 * The Ansible side: an inventory of the hosts' namespace addresses (key auth with the fleet's
 * client key, host keys pinned through a generated known_hosts), one playbook per workload
 * (./workloads), and `ansible-playbook` run inside the ctl namespace, timed from spawn to exit.
 *
 * Each run gets its own HOME, ANSIBLE_LOCAL_TEMP and SSH control-path directory, so no run reuses
 * another's persistent SSH connections (ControlPersist keeps them 60 s by default): each run pays
 * its connections, as an operator's first run of the day does. Its leftover SSH masters are ended
 * after the clock stops, by the pids whose command line names that run's control directory.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { AnsibleConfig, Workload } from './options';
import type { AnsibleFleet } from './hosts';
import { rootEnv } from './packages';
import { playbookYaml, TASKS_PER_HOST } from './workloads';

export const ANSIBLE_PLAYBOOK = '/usr/bin/ansible-playbook';
const RUN_TIMEOUT_MS = 30 * 60_000;

/** ansible.cfg of each configuration; `default` sets nothing Ansible would not. */
const CONFIG_TEXT: Record<AnsibleConfig, string> = {
  default: '[defaults]\n',
  tuned: '[defaults]\nforks = 50\n\n[ssh_connection]\npipelining = True\n',
};

export interface AnsibleSetup {
  readonly dir: string;
  readonly inventory: string;
  readonly playbooks: Record<Workload, string>;
  readonly configs: Record<AnsibleConfig, string>;
  runs: number;
}

export function prepareAnsible(dir: string, fleet: AnsibleFleet): AnsibleSetup {
  mkdirSync(dir, { recursive: true });
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, fleet.hosts.map((h) => `${h.sshd.knownHostsLine(h.sshd.host)}\n`).join(''));
  const hosts = Object.fromEntries(
    fleet.hosts.map((h) => {
      const env = rootEnv(h.root);
      return [
        `h${h.index}`,
        {
          ansible_host: h.sshd.host,
          ansible_port: h.sshd.port,
          apt_config: env.APT_CONFIG,
          dpkg_admindir: env.DPKG_ADMINDIR,
        },
      ];
    }),
  );
  const vars = {
    ansible_user: 'root',
    ansible_ssh_private_key_file: fleet.ssh.client.privateKeyFile,
    ansible_ssh_common_args: `-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
  };
  const inventory = path.join(dir, 'inventory.yml');
  writeFileSync(inventory, YAML.stringify({ all: { children: { bench: { hosts, vars } } } }));
  const playbooks = {} as Record<Workload, string>;
  for (const w of ['noop', 'check', 'staged'] as const) {
    playbooks[w] = path.join(dir, `${w}.yml`);
    writeFileSync(playbooks[w], playbookYaml(w));
  }
  const configs = {} as Record<AnsibleConfig, string>;
  for (const c of ['default', 'tuned'] as const) {
    configs[c] = path.join(dir, `ansible-${c}.cfg`);
    writeFileSync(configs[c], CONFIG_TEXT[c]);
  }
  return { dir, inventory, playbooks, configs, runs: 0 };
}

/** The command line, as docs/benchmarks.md shows it. */
export function ansibleCommand(setup: AnsibleSetup, config: AnsibleConfig, workload: Workload): string[] {
  return [ANSIBLE_PLAYBOOK, '-i', setup.inventory, setup.playbooks[workload]];
}

/** One timed `ansible-playbook` run; throws unless every host ran every task. */
export async function runAnsible(
  fleet: AnsibleFleet,
  setup: AnsibleSetup,
  config: AnsibleConfig,
  workload: Workload,
): Promise<number> {
  const runDir = path.join(setup.dir, `run-${++setup.runs}-${workload}-${config}`);
  const dirs = { home: 'home', tmp: 'tmp', cp: 'cp' };
  for (const d of Object.values(dirs)) mkdirSync(path.join(runDir, d), { recursive: true });
  const env = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: path.join(runDir, dirs.home),
    ANSIBLE_CONFIG: setup.configs[config],
    ANSIBLE_LOCAL_TEMP: path.join(runDir, dirs.tmp),
    ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(runDir, dirs.cp),
    ANSIBLE_NOCOLOR: '1',
    LANG: 'C.UTF-8',
  };
  const [cmd, ...args] = ansibleCommand(setup, config, workload);
  const started = process.hrtime.bigint();
  const r = await fleet.ssh.netns.execIn(fleet.ssh.netns.ctl, cmd ?? ANSIBLE_PLAYBOOK, args, {
    env,
    timeoutMs: RUN_TIMEOUT_MS,
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  endControlMasters(path.join(runDir, dirs.cp));
  writeFileSync(path.join(runDir, 'output.log'), `${r.stdout}\n--- stderr\n${r.stderr}`);
  const problem = recapProblem(r.stdout, fleet.hosts.length, workload);
  if (r.code !== 0 || problem !== undefined)
    throw new Error(
      `ansible-playbook ${workload} (${config}) exited ${r.code}: ${problem ?? ''}\n${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`,
    );
  return wallMs;
}

/** Why the PLAY RECAP does not show every host with every task ok, or undefined. */
function recapProblem(stdout: string, hosts: number, workload: Workload): string | undefined {
  const recap = stdout.split('PLAY RECAP')[1] ?? '';
  const rows = [...recap.matchAll(/^(h\d+)\s*: ok=(\d+)\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
  if (rows.length !== hosts) return `the recap lists ${rows.length} hosts, not ${hosts}`;
  const bad = rows.filter((m) => Number(m[2]) !== TASKS_PER_HOST[workload] || m[3] !== '0' || m[4] !== '0');
  return bad.length === 0
    ? undefined
    : `not every task ok: ${bad
        .slice(0, 3)
        .map((m) => m[0])
        .join(' | ')}`;
}

/** SIGTERM to the SSH masters (ControlPersist) of one run: the pids whose argv names its cp dir. */
function endControlMasters(cpDir: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string;
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    if (!argv.startsWith('ssh\0') || !argv.includes(cpDir)) continue;
    try {
      process.kill(Number(entry), 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
