/**
 * Text people choose to be shown to other people — an organization's name, a person's name and
 * profile fields — as it is stored and shown: NFC (Unicode Standard Annex #15, so the same name
 * typed on two systems compares equal), trimmed, runs of white space as one space.
 *
 * Refused: other code points (`\p{C}`: control characters, which would end up in mail subjects
 * and CSV exports; format characters, among them the bidirectional overrides and isolates
 * U+202A–U+202E and U+2066–U+2069 that make text read backwards (CVE-2021-42574, "Trojan
 * Source"), zero-width spaces and the byte-order mark; private-use, unassigned and lone
 * surrogates); the letters and marks that fonts draw as nothing — the Hangul fillers U+115F,
 * U+1160, U+3164 and U+FFA0, U+034F COMBINING GRAPHEME JOINER, U+2800 BRAILLE PATTERN BLANK —
 * anywhere, since inside a name they make it look exactly like another ("a\u034Fb" reads "ab");
 * and text with nothing visible in it (only white space).
 *
 * Two format characters are part of how some languages are written: ZERO WIDTH NON-JOINER and
 * ZERO WIDTH JOINER inside a word (Persian, Indic scripts; RFC 5892 Appendix A.1–A.2 allows them
 * in that context for domain names too), and ZWJ between two pictographs (emoji sequences,
 * UTS #51). There, and only there, they are kept.
 */
export type DisplayText = { ok: true; value: string } | { ok: false };

/** Letters and marks on both sides: a joiner inside a word. */
const JOINER_IN_WORD = /(?<=[\p{L}\p{M}])[\u200C\u200D](?=[\p{L}\p{M}])/gu;
/** ZWJ between pictographs (a VS16 or skin-tone modifier may follow the first). */
const JOINER_IN_EMOJI = /(?<=\p{Extended_Pictographic}[\uFE0F\u{1F3FB}-\u{1F3FF}]?)\u200D(?=\p{Extended_Pictographic})/gu;
const OTHER = /\p{C}/u;
/** Drawn as nothing, yet letters, marks or symbols by category: refused anywhere in the text. */
const INVISIBLE = /[\u115F\u1160\u3164\uFFA0\u2800\u034F]/u;

/**
 * `input` as stored, or `{ ok: false }`. `allowEmpty`: an empty result (after trimming) is a
 * valid "no value" (profile fields that can be cleared); text that is only invisible characters
 * is refused either way.
 */
export function displayText(input: unknown, max: number, options: { allowEmpty?: boolean } = {}): DisplayText {
  if (typeof input !== 'string') return { ok: false };
  // Bounded before any work: normalising a megabyte is wasted time.
  if (input.length > max * 4) return { ok: false };
  const nfc = input.normalize('NFC');
  if (!nfc.isWellFormed()) return { ok: false };
  // Checked before white space is collapsed: JavaScript's \s takes U+FEFF (a format character).
  const value = nfc.replace(/[\t\n\r]/g, ' ');
  if (OTHER.test(value.replace(JOINER_IN_WORD, '').replace(JOINER_IN_EMOJI, '')) || INVISIBLE.test(value)) return { ok: false };
  const cleaned = value.trim().replace(/\s+/g, ' ');
  if (!cleaned) return options.allowEmpty ? { ok: true, value: '' } : { ok: false };
  if (cleaned.length > max) return { ok: false };
  if (!cleaned.replace(/[\s\u200C\u200D\p{M}]/gu, '')) return { ok: false };
  return { ok: true, value: cleaned };
}
