/**
 * A set of short strings (Trello member ids, ≤ 64 characters) kept compactly: their UTF-8 bytes
 * one after the other in one growing buffer, and an open-addressing table of their positions.
 * 40 to 60 bytes per 24-character id (with growth slack), where a `Set<string>` takes 70 to 80: the import remembers
 * every id it met, to tell a repeated line from a member imported by an earlier run, and a file of
 * a million members must stay well under its memory bound (issue 14). Exact: a hash match is
 * confirmed by comparing the bytes.
 */
export class IdSet {
  private bytes = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  /** Per entry: start in `bytes` and length (entries are numbered from 1 in `slots`). */
  private starts = new Uint32Array(1 << 12);
  private lengths = new Uint8Array(1 << 12);
  private slots = new Uint32Array(1 << 13);
  size = 0;

  /** Adds `id`; returns true if it was already there. */
  addHas(id: string): boolean {
    const length = Buffer.byteLength(id);
    if (length > 255) throw new RangeError('IdSet: id longer than 255 bytes');
    if (this.used + length > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + length));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    // Written at the end first; kept there only if new.
    this.bytes.write(id, this.used, 'utf8');
    const hash = fnv1a(this.bytes, this.used, length);
    const mask = this.slots.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = this.slots[i]!;
      if (entry === 0) {
        this.insert(i, length);
        return false;
      }
      const start = this.starts[entry - 1]!;
      if (this.lengths[entry - 1] === length && this.bytes.compare(this.bytes, this.used, this.used + length, start, start + length) === 0) return true;
    }
  }

  private insert(slot: number, length: number): void {
    if (this.size === this.starts.length) {
      const starts = new Uint32Array(this.starts.length * 2);
      starts.set(this.starts);
      this.starts = starts;
      const lengths = new Uint8Array(this.lengths.length * 2);
      lengths.set(this.lengths);
      this.lengths = lengths;
    }
    this.starts[this.size] = this.used;
    this.lengths[this.size] = length;
    this.size += 1;
    this.slots[slot] = this.size;
    this.used += length;
    // Kept at most half full, so that a probe ends after a step or two.
    if (this.size * 2 > this.slots.length) this.rehash();
  }

  private rehash(): void {
    const slots = new Uint32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let entry = 1; entry <= this.size; entry += 1) {
      const start = this.starts[entry - 1]!;
      let i = fnv1a(this.bytes, start, this.lengths[entry - 1]!) & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = entry;
    }
    this.slots = slots;
  }

  /** Bytes held, for memory reports. */
  get footprint(): number {
    return this.bytes.length + this.starts.byteLength + this.lengths.byteLength + this.slots.byteLength;
  }
}

/** 32-bit FNV-1a of `length` bytes at `start`. */
function fnv1a(bytes: Buffer, start: number, length: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + length; i += 1) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
