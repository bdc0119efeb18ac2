import { describe, expect, it } from 'vitest';

import { generateKey } from '../keys/format.ts';
import { MAX_NOTE_BYTES, eventNote } from './events.ts';

describe('eventNote', () => {
  it('scrubs keys, raw and encoded, from a note', () => {
    const key = generateKey({ prefix: 'kr', environment: 'staging', bits: 256 });
    const note = eventNote(
      `refused: ${Buffer.from(key).toString('base64')} ${Buffer.from(key).toString('hex')} API_KEY_${key}`,
    );
    expect(note.startsWith('refused: ')).toBe(true);
    expect(
      [key, Buffer.from(key).toString('base64'), Buffer.from(key).toString('hex')].some((s) =>
        note.includes(s),
      ),
    ).toBe(false);
  });

  it('cuts a note to 1 KiB of UTF-8 on a character boundary, ending in "…"', () => {
    expect(MAX_NOTE_BYTES).toBe(1024);
    for (const filler of ['x', 'é', '€', '😀']) {
      const note = eventNote(filler.repeat(2000));
      expect(Buffer.byteLength(note, 'utf8')).toBeLessThanOrEqual(MAX_NOTE_BYTES);
      expect(Buffer.byteLength(note, 'utf8')).toBeGreaterThan(MAX_NOTE_BYTES - 8);
      expect(note.endsWith('…')).toBe(true);
      // Whole characters only: the cut never splits one.
      expect(note.slice(0, -1)).toBe(filler.repeat(note.slice(0, -1).length / filler.length));
    }
    expect(eventNote('short note')).toBe('short note');
  });
});
