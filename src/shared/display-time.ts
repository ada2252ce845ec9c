/**
 * One way to write an instant for people, on every page and in every mail: `2026-11-29 22:00 UTC`.
 * Year first and a 24-hour clock read the same in every language's habits, the minute is as
 * precise as anyone needs, and UTC is said rather than guessed: pages are rendered on the server,
 * which does not know the reader's time zone.
 */
export function displayTime(value: Date | string | number): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
