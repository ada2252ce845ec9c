/**
 * PostgreSQL array literals (`{"a","b",NULL}`) built directly, for parameters of thousands of
 * elements cast in SQL (`$1::text[]`, `$2::boolean[]`, `$3::timestamptz[]`). The drivers turn a
 * JavaScript array into the same text element by element, with a type dispatch and a regular
 * expression each: for the legacy import's batches that was the largest share of Node's time
 * after the parsing itself (issue 14). Same text on both engines.
 */
const NEEDS_ESCAPE = /["\\]/;

/** Text (or timestamps as ISO strings): each element quoted, `"` and `\` escaped; null is NULL. */
export function textArray(values: readonly (string | null | undefined)[]): string {
  // Joined at once: one flat string, not a rope of thousands of pieces kept until it is sent.
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    parts[i] = v == null ? 'NULL' : `"${NEEDS_ESCAPE.test(v) ? v.replace(/["\\]/g, '\\$&') : v}"`;
  }
  return `{${parts.join(',')}}`;
}

export function booleanArray(values: readonly boolean[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) out += i ? (values[i] ? ',t' : ',f') : values[i] ? 't' : 'f';
  return `${out}}`;
}
