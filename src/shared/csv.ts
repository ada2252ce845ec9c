/**
 * CSV for spreadsheets (RFC 4180): fields joined by commas, records by CRLF, a field quoted when
 * it holds a comma, a quote, CR or LF, and quotes inside doubled.
 *
 * A cell a spreadsheet would read as a formula is defused (OWASP "CSV Injection"): a value
 * starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a single quote in front, so
 * Excel, LibreOffice and Google Sheets show it as text instead of evaluating it (`=HYPERLINK(…)`
 * in an organization name or an invited address would otherwise run in an admin's spreadsheet).
 * The quote is visible in the cell; that is the price OWASP accepts for the safety.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : value instanceof Date ? value.toISOString() : String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvRecord(values: readonly unknown[]): string {
  return `${values.map(csvCell).join(',')}\r\n`;
}
