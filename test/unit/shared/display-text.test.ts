import { expect } from 'chai';
import { displayText } from '../../../src/shared/display-text.ts';

/** The rule for text shown to other people (organization names, profile names): docs/security.md. */
describe('display text', () => {
  const refused = (label: string, input: unknown) => it(`refuses ${label}`, () => {
    expect(displayText(input, 100)).to.deep.equal({ ok: false });
  });
  const kept = (label: string, input: string, value: string) => it(`keeps ${label}`, () => {
    expect(displayText(input, 100)).to.deep.equal({ ok: true, value });
  });

  refused('a name of zero-width spaces only (U+200B)', '\u200B\u200B\u200B');
  refused('a right-to-left override (U+202E)', 'Acme \u202Egnp.exe');
  refused('a left-to-right embedding (U+202A)', '\u202AAcme');
  refused('a first-strong isolate and its pop (U+2068, U+2069)', 'Acme\u2068 Corp\u2069');
  refused('a zero-width joiner between a letter and a space', 'Acme\u200D Corp');
  refused('a zero-width non-joiner at the start', '\u200CAcme');
  refused('a word joiner (U+2060)', 'Ac\u2060me');
  refused('a byte-order mark inside', 'Ac\uFEFFme');
  refused('a soft hyphen (U+00AD, a format character)', 'Ac\u00ADme');
  refused('Unicode tag characters (U+E0041)', 'Acme\u{E0041}');
  refused('control characters', 'Acme\u0000');
  refused('a C1 control (U+0085 is a line break to some)', 'Acme\u0085Corp');
  refused('private-use characters', 'Acme\uE000');
  refused('a lone surrogate', 'Acme\uD800');
  refused('only blanks drawn as nothing (U+3164 HANGUL FILLER)', '\u3164\u3164');
  refused('a combining grapheme joiner inside a name (reads exactly as "ab")', 'a\u034Fb');
  refused('a Hangul filler inside a name', 'Acme\u3164Corp');
  refused('a halfwidth Hangul filler inside a name', 'Acme\uFFA0');
  refused('a Hangul choseong filler inside a name', 'Ac\u115Fme');
  refused('a braille blank inside a name', 'Ac\u2800me');
  refused('only a braille blank (U+2800)', '\u2800');
  refused('only white space', ' \t\u00A0\u3000 ');
  refused('an empty name', '');
  refused('more than the maximum', 'x'.repeat(101));
  refused('a megabyte', 'x'.repeat(1_000_000));
  refused('what is not text', 42);

  kept('an ordinary name, trimmed, runs of white space as one', '  Acme \t  Corp ', 'Acme Corp');
  kept('a name in NFC (a decomposed é composed)', 'Cafe\u0301', 'Caf\u00E9');
  kept('a Persian word with its zero-width non-joiner', '\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645', '\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645');
  kept('a Devanagari conjunct with a zero-width joiner', '\u0915\u094D\u200D\u0937', '\u0915\u094D\u200D\u0937');
  kept('an emoji sequence joined by ZWJ', 'Team \u{1F469}\u200D\u{1F4BB}', 'Team \u{1F469}\u200D\u{1F4BB}');
  kept('right-to-left text without overrides', '\u05E9\u05DC\u05D5\u05DD', '\u05E9\u05DC\u05D5\u05DD');
  kept('a name with a dot (a company named for its site)', 'Booking.com', 'Booking.com');

  it('lets a field be cleared with empty text when asked, never with invisible characters', () => {
    expect(displayText('   ', 100, { allowEmpty: true })).to.deep.equal({ ok: true, value: '' });
    expect(displayText('\u200B', 100, { allowEmpty: true })).to.deep.equal({ ok: false });
  });
});
