/**
 * What the host says about reboots: its boot id, whether the package manager asks for a reboot,
 * and whether systemd runs (so `systemctl reboot` can). The files are the kernel's and Debian's;
 * tests point the agent at their own through the environment, as a real host never needs to.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Where the kernel gives a new random id at every boot. */
export const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
/** Debian's and Ubuntu's flag, written by packages (a new kernel, libc) that need a reboot. */
export const REBOOT_REQUIRED_FILE = '/var/run/reboot-required';
/** Present only when systemd is PID 1 (sd_booted(3) checks the same directory). */
const SYSTEMD_RUN_DIR = '/run/systemd/system';

/** Overrides for tests: the boot id file a fake host "reboots" by rewriting it, and its flag file. */
export const BOOT_ID_FILE_ENV = 'CONVOY_BOOT_ID_FILE';
export const REBOOT_REQUIRED_FILE_ENV = 'CONVOY_REBOOT_REQUIRED_FILE';

export interface RebootFacts {
  /** The id of the running boot; throws when it cannot be read (no id, no safe reboot). */
  bootId(): string;
  /** Whether Debian's reboot-required flag is there. */
  rebootRequiredFlag(): boolean;
  /** The `needs-restarting` program (RHEL, dnf-utils) when installed, else undefined. */
  needsRestarting(): string | undefined;
  systemdRuns(): boolean;
}

export function hostRebootFacts(env: NodeJS.ProcessEnv = process.env): RebootFacts {
  const bootIdFile = env[BOOT_ID_FILE_ENV] || BOOT_ID_FILE;
  const flagFile = env[REBOOT_REQUIRED_FILE_ENV] || REBOOT_REQUIRED_FILE;
  return {
    bootId: () => {
      const id = readFileSync(bootIdFile, 'utf8').trim();
      if (id === '') throw new Error(`${bootIdFile} is empty`);
      return id;
    },
    rebootRequiredFlag: () => existsSync(flagFile),
    needsRestarting: () => onPath('needs-restarting', env['PATH'] ?? ''),
    systemdRuns: () => existsSync(SYSTEMD_RUN_DIR),
  };
}

function onPath(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(':')) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}
