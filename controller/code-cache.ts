/**
 * Loads a CommonJS file through V8's code cache, kept beside it as `<file>.v8cache`.
 *
 * An operator command is short: most of a `convoy ping` used to be Node compiling the CLI's 1.8 MB
 * of JavaScript, again on every run. Node 22 caches that compilation itself
 * (module.enableCompileCache); Node 20, which Convoy supports, does not, so the CLI does it here:
 * the first run writes the cache when it exits (so that it holds what the command compiled
 * lazily, not just the top level), later runs start from it. V8 checks the cache against the
 * source and its own version and flags, and a rejected or unreadable cache only means compiling
 * as usual. The cache is written where the file is, with the file's own trust: a directory the
 * user cannot write (a system-wide install) simply goes without.
 *
 * It lives with the controller package because its one user is the operator CLI's launcher, and it
 * does file I/O, which shared/ does not.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

export function requireWithCodeCache(file: string): unknown {
  const cacheFile = `${file}.v8cache`;
  const source = readFileSync(file, 'utf8');
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const mod = new Module(file, module);
  mod.filename = file;
  const run = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: Module,
    filename: string,
    dirname: string,
  ) => void;
  run.call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.once('exit', () => writeCache(script, cacheFile));
  }
  return mod.exports;
}

function writeCache(script: vm.Script, cacheFile: string): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
    // Several commands may start cold at once: each writes its own file and the last rename wins.
    renameSync(tmp, cacheFile);
  } catch {
    // Unwritable (read-only install, full disk): the next run compiles as this one did.
    rmSync(tmp, { force: true });
  }
}
