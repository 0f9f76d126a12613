/**
 * Temporary directories a test file's helpers made for it and that live until the file ends
 * (test/helpers/processes.ts `tempDir`). The leak check removes them after the file's last
 * afterAll hook, once every fixture has stopped, and only then looks for leftovers: a hook of the
 * helper's own would run before the file's hooks (jest runs hooks in the order they are added) and
 * pull directories from under processes still running.
 *
 * The list lives on the test file's global object under a registry symbol, which the environment
 * outside jest's sandbox reads with the same Symbol.for.
 */
const KEY = Symbol.for('convoy.test.tempDirs');

type Holder = { [KEY]?: Set<string> };

/** Has the leak check remove `dir` (recursively) when the current test file ends. */
export function removeWhenFileEnds(dir: string): void {
  const holder = globalThis as Holder;
  (holder[KEY] ??= new Set()).add(dir);
}

/** Takes the directories registered on `global` (a test file's global object). */
export function takeRegisteredDirs(global: object): string[] {
  const holder = global as Holder;
  const dirs = [...(holder[KEY] ?? [])];
  holder[KEY]?.clear();
  return dirs;
}
