import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SEQ_JOURNAL_FILE, SeqJournal } from './seq-journal';

const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'convoy-journal-'));
  made.push(d);
  return d;
}

describe('sequence journal', () => {
  it('starts empty and remembers what it accepted across reopen', () => {
    const d = dir();
    const j = SeqJournal.open(d);
    expect(j.current).toEqual({ lastSeq: 0, lastDigest: null });
    j.accept(1, D1);
    j.accept(2, D2);
    j.close();
    expect(SeqJournal.open(d).current).toEqual({ lastSeq: 2, lastDigest: D2 });
    expect(readFileSync(path.join(d, SEQ_JOURNAL_FILE), 'utf8')).toBe(`1 ${D1}\n2 ${D2}\n`);
  });

  it('cuts a torn last line so that the next accepted seq survives a restart', () => {
    const d = dir();
    writeFileSync(path.join(d, SEQ_JOURNAL_FILE), `1 ${D1}\n2 bb`);
    const j = SeqJournal.open(d);
    expect(j.current.lastSeq).toBe(1);
    j.accept(2, D2);
    j.close();
    expect(SeqJournal.open(d).current).toEqual({ lastSeq: 2, lastDigest: D2 });
  });

  it('compacts a long journal to its last line and keeps appending', () => {
    const d = dir();
    const j = SeqJournal.open(d);
    for (let seq = 1; seq <= 4000; seq++) j.accept(seq, seq % 2 === 0 ? D2 : D1);
    j.accept(4001, D1);
    j.close();
    const text = readFileSync(path.join(d, SEQ_JOURNAL_FILE), 'utf8');
    expect(text.length).toBeLessThan(256 * 1024);
    expect(SeqJournal.open(d).current).toEqual({ lastSeq: 4001, lastDigest: D1 });
  });
});
