/**
 * Labels (`role=core,site=paris`) and selectors. Values are data: they are stored and shown
 * verbatim, so anything but the separators and control characters is allowed.
 */

export type Labels = Readonly<Record<string, string>>;

const MAX_KEY = 63;
const MAX_VALUE = 253;
// eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Parses `k=v,k2=v2`; throws an Error naming the bad pair. Empty input gives no labels. */
export function parseLabels(text: string): Labels {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (text.trim() === '') return out;
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`label "${pair}" must look like key=value`);
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1);
    const problem = labelProblem(key, value);
    if (problem !== null) throw new Error(`label "${pair}": ${problem}`);
    out[key] = value;
  }
  return out;
}

/** Why a key/value pair is not a valid label, or null when it is. */
export function labelProblem(key: string, value: string): string | null {
  if (key.length === 0 || key.length > MAX_KEY) return `key must be 1-${MAX_KEY} characters`;
  if (key.includes('=') || CONTROL.test(key)) return 'key must not contain "=" or control characters';
  if (value.length > MAX_VALUE) return `value must be at most ${MAX_VALUE} characters`;
  if (CONTROL.test(value)) return 'value must not contain control characters';
  return null;
}

/** True when every pair of the selector is among the labels. */
export function matchesSelector(labels: Labels, selector: Labels): boolean {
  return Object.entries(selector).every(
    ([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v,
  );
}

export function formatLabels(labels: Labels): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
