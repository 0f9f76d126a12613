/**
 * A fake Pydio Cells host (seed 002): a binary that migrates its data on the first start of a
 * newer version and refuses data newer than itself, the update server's catalogue `cells update`
 * lists, and the service commands a host without systemd uses.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { shq, writeScript } from './fake-apps';

export interface FakeCellsPaths {
  /** The Cells working directory: `version` (the data's schema) and `users` (the data). */
  readonly dataDir: string;
  /** The versions the update server offers, one a line (what `cells update` lists). */
  readonly catalogue: string;
}

/**
 * The fake `cells` binary of VERSION (the same bytes on every host, as a release is): `version`
 * prints it; `update` lists the update server's catalogue as a table (as `cells update` lists the
 * versions offered); `start` migrates the data to its version on the first start of a newer
 * binary, and refuses data newer than itself: Cells has no downward migrations ("Downgrading is
 * not possible"). Where the data and the catalogue are, it reads from `cells.paths` beside it.
 */
export function cellsBinary(version: string): string {
  return `#!/bin/sh
# Fake Pydio Cells ${version} (test/helpers/fake-apps.ts).
v=${version}
conf="$(dirname "$0")/cells.paths"
data=$(sed -n 1p "$conf")
catalogue=$(sed -n 2p "$conf")
case "$1" in
  version) echo "Pydio Cells v$v"; echo "Git commit: 0000000" ;;
  update)
    [ -z "$2" ] || { echo "cells update $2: this fake only lists versions" >&2; exit 1; }
    echo "Available binaries for update:"
    echo "+----+---------+--------------------+"
    echo "| #  | VERSION | DESCRIPTION        |"
    n=0
    while read -r ver; do n=$((n + 1)); echo "| $n  | $ver   | Pydio Cells $ver |"; done < "$catalogue"
    echo "+----+---------+--------------------+"
    ;;
  start)
    have=$(cat "$data/version")
    if [ "$have" != "$v" ]; then
      older=$(printf '%s\\n%s\\n' "$have" "$v" | sort -V | head -n 1)
      if [ "$older" = "$v" ]; then
        echo "the data is at $have, newer than this binary ($v): downgrading is not possible" >&2
        exit 1
      fi
      echo "$have -> $v" >> "$data/migrations.log"
      echo "$v" > "$data/version"
    fi
    echo "Pydio Cells v$v started"
    ;;
  *) echo "cells: unknown command $1" >&2; exit 1 ;;
esac
`;
}

export interface FakeCells extends FakeCellsPaths {
  readonly binary: string;
  /** One line per stop or start: `start 1.6.3`. */
  readonly serviceLog: string;
  /** Programs for the recipe's stopCommand and startCommand. */
  readonly stopCommand: string;
  readonly startCommand: string;
  state(): CellsState;
}

export interface CellsState {
  /** What the installed binary reports, `none` when it does not run. */
  readonly version: string;
  /** The data's schema version. */
  readonly data: string;
  readonly running: boolean;
  readonly users: string;
}

/** A fake Cells at INSTALLED in DIR: binary, data at its version, running, and its service scripts. */
export function createFakeCells(dir: string, installed: string, offered: readonly string[]): FakeCells {
  const paths = { dataDir: path.join(dir, 'cells-data'), catalogue: path.join(dir, 'update-server.txt') };
  mkdirSync(paths.dataDir, { recursive: true });
  writeFileSync(path.join(paths.dataDir, 'version'), `${installed}\n`);
  writeFileSync(path.join(paths.dataDir, 'users'), 'alice,bob\n');
  writeFileSync(paths.catalogue, offered.map((v) => `${v}\n`).join(''));
  const binary = writeScript(path.join(dir, 'opt/pydio/bin/cells'), cellsBinary(installed));
  writeFileSync(path.join(dir, 'opt/pydio/bin/cells.paths'), `${paths.dataDir}\n${paths.catalogue}\n`);
  const serviceLog = path.join(dir, 'service.log');
  const running = path.join(dir, 'cells.state');
  writeFileSync(running, 'running\n');
  const stopCommand = writeScript(
    path.join(dir, 'stop-cells'),
    `#!/bin/sh\necho "stop $(${shq(binary)} version | head -n 1)" >> ${shq(serviceLog)}\necho stopped > ${shq(running)}\n`,
  );
  const startCommand = writeScript(
    path.join(dir, 'start-cells'),
    `#!/bin/sh\n${shq(binary)} start || exit 1\necho "start $(${shq(binary)} version | head -n 1)" >> ${shq(serviceLog)}\necho running > ${shq(running)}\n`,
  );
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      return 'none';
    }
  };
  return {
    ...paths,
    binary,
    serviceLog,
    stopCommand,
    startCommand,
    state: () => {
      let version = 'none';
      try {
        version = /v([0-9.]+)/.exec(execFileSync(binary, ['version'], { encoding: 'utf8' }))?.[1] ?? 'none';
      } catch {
        // A binary that does not run reports no version.
      }
      return {
        version,
        data: read(path.join(paths.dataDir, 'version')),
        running: read(running) === 'running',
        users: read(path.join(paths.dataDir, 'users')),
      };
    },
  };
}
