import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ReasonCodes, RejectedRecordError } from '../../src/domain/errors.js';
import type { InputRecord } from '../../src/domain/events.js';
import { deadLetterOf } from '../../src/domain/outputs.js';

describe('dead-letter reason codes', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it('are each documented in the README table', () => {
    const documented = new Set([...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
    for (const code of Object.keys(ReasonCodes)) expect(documented, `README lacks a row for ${code}`).toContain(code);
  });

  it('have distinct descriptions and SCREAMING_SNAKE names', () => {
    const descriptions = Object.values(ReasonCodes);
    expect(new Set(descriptions).size).toBe(descriptions.length);
    for (const code of Object.keys(ReasonCodes)) expect(code).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
  });
});

describe('deadLetterOf', () => {
  const source: InputRecord = { topic: 'clicks', partition: 0, offset: '7', key: null, value: null, timestamp: 1 };

  it('keeps a rejection reason and message, and calls anything else PROCESSING_FAILED', () => {
    expect(deadLetterOf(source, new RejectedRecordError('EMPTY_VALUE', 'no value'), 42)).toEqual({ source, reason: 'EMPTY_VALUE', message: 'no value', failedAt: 42 });
    expect(deadLetterOf(source, new TypeError('x is undefined'), 43)).toEqual({ source, reason: 'PROCESSING_FAILED', message: 'x is undefined', failedAt: 43 });
    expect(deadLetterOf(source, 'thrown string', 44).message).toBe('thrown string');
  });
});
