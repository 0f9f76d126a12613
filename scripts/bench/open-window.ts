/**
 * The maintenance window of the rollout benchmarks: open for the whole run, and cheap to check.
 *
 * Not `{ cron: '* * * * *', duration: 1d }` (the fixtures' "always"): its occurrences overlap
 * forever, so every window check walks shared/schedule.ts's 1,000-occurrence merge limit, about
 * 0.4 s of controller CPU on the reference machine, at every engine pass and every
 * `rollout status` / `watch` poll. That would measure the window, not the rollout. A daily window
 * that opened an hour ago and lasts 4 h is open throughout and costs about 1 ms to check.
 */
export function openWindowYaml(name: string, nowMs = Date.now()): string {
  const opened = new Date(nowMs - 3_600_000);
  const cron = `${opened.getUTCMinutes()} ${opened.getUTCHours()} * * *`;
  return `  ${name}: { cron: '${cron}', duration: 4h, timezone: UTC }`;
}
