import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ReasonCodes } from '../../src/domain/errors.js';

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
