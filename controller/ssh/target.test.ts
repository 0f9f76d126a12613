import { execFileSync } from 'node:child_process';
import { parseSshTarget, showTarget } from './target';
import { shellQuote } from './remote-agent';

describe('parseSshTarget', () => {
  it.each([
    ['root@host', { user: 'root', host: 'host', port: 22 }],
    ['root@10.200.0.10:2222', { user: 'root', host: '10.200.0.10', port: 2222 }],
    ['deploy@db-1.example.org', { user: 'deploy', host: 'db-1.example.org', port: 22 }],
    ['root@[::1]:2200', { user: 'root', host: '::1', port: 2200 }],
  ])('reads %s', (text, want) => {
    expect(parseSshTarget(text)).toEqual(want);
    expect(showTarget(parseSshTarget(text))).toBe(text);
  });

  it.each([
    ['no user', 'host', /must be USER@HOST/],
    ['command substitution in the host', 'root@$(touch /tmp/pwn)', /is not a host name/],
    ['backticks in the host', 'root@`id`', /is not a host name/],
    ['a semicolon in the host', 'root@h;rm -rf /', /is not a host name/],
    ['an option as host', 'root@-oProxyCommand=x', /is not a host name/],
    ['shell in the user', '$(id)@host', /is not a user name/],
    ['a bad port', 'root@host:99999', /is not a port/],
    ['a port that is not a number', 'root@host:ssh', /is not a port/],
    ['an unclosed IPv6', 'root@[::1', /closed with \]/],
  ])('refuses %s, naming the flag', (_what, text, reason) => {
    expect(() => parseSshTarget(text)).toThrow(reason);
    expect(() => parseSshTarget(text)).toThrow(/^--ssh /);
  });
});

describe('shellQuote', () => {
  it.each(["it's", '$(touch /tmp/pwn)', '`id`', 'a b;c|d&e', "'''"])(
    'makes %s one literal word for sh',
    (word) => {
      const out = execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(word)}`]).toString();
      expect(out).toBe(word);
    },
  );
});
