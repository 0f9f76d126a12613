/**
 * The agent's memory of the last command it accepted: sequence number and payload digest,
 * appended and fdatasync'ed *before* the command is acted on, so that a restarted agent still
 * refuses a replay. Appending one short line costs far less than rewriting a file; the log is
 * compacted (temp file + fsync + rename) when it grows.
 */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { ReplayState } from '../shared/envelope';

export const SEQ_JOURNAL_FILE = 'seq.log';
const COMPACT_AFTER_BYTES = 256 * 1024;
const LINE = /^(\d+) ([0-9a-f]{64})$/;

export class SeqJournal {
  private fd: number;
  private bytes: number;
  private state: ReplayState;

  private constructor(
    private readonly file: string,
    state: ReplayState,
    bytes: number,
  ) {
    this.state = state;
    this.bytes = bytes;
    this.fd = openSync(file, 'a', 0o600);
  }

  /** Reads the journal; a torn last line (crash mid-write) is cut off before anything is appended. */
  static open(stateDir: string): SeqJournal {
    const file = path.join(stateDir, SEQ_JOURNAL_FILE);
    let raw = Buffer.alloc(0);
    try {
      raw = readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // The next append must start a line of its own: fused with a fragment, the accepted seq
    // would be unreadable after the next restart and its command could run twice.
    const complete = raw.lastIndexOf(0x0a) + 1;
    if (complete < raw.length) {
      truncateSync(file, complete);
      raw = raw.subarray(0, complete);
    }
    let state: ReplayState = { lastSeq: 0, lastDigest: null };
    for (const line of raw.toString('utf8').split('\n')) {
      const m = LINE.exec(line);
      if (m !== null && Number(m[1]) > state.lastSeq)
        state = { lastSeq: Number(m[1]), lastDigest: m[2] ?? null };
    }
    return new SeqJournal(file, state, raw.length);
  }

  get current(): ReplayState {
    return this.state;
  }

  /** Durable before it returns. */
  accept(seq: number, digest: string): void {
    const line = `${seq} ${digest}\n`;
    writeSync(this.fd, line);
    fdatasyncSync(this.fd);
    this.bytes += line.length;
    this.state = { lastSeq: seq, lastDigest: digest };
    if (this.bytes > COMPACT_AFTER_BYTES) this.compact();
  }

  close(): void {
    closeSync(this.fd);
  }

  private compact(): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    const line = `${this.state.lastSeq} ${this.state.lastDigest ?? ''}\n`;
    writeSync(fd, line);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file);
    fsyncDir(path.dirname(this.file));
    closeSync(this.fd);
    this.fd = openSync(this.file, 'a', 0o600);
    this.bytes = line.length;
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
