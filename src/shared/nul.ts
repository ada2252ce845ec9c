/**
 * True when a string, or any key or string inside arrays and objects, holds a NUL character.
 * PostgreSQL stores neither a NUL in text (error 22021) nor \u0000 in jsonb (22P05), so input
 * carrying one is refused before it reaches a query.
 */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (depth > 64 || value === null || typeof value !== 'object') return false;
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\0') || containsNul(item, depth + 1)) return true;
  }
  return false;
}
