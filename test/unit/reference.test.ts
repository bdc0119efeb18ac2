import { readFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { REFERENCE_PATH, renderReference } from '../../scripts/reference.ts';

describe('docs/reference.md', () => {
  it('is what the CRD renders today (run npm run docs:reference after changing the CRD)', async () => {
    expect(await readFile(REFERENCE_PATH, 'utf8')).toBe(await renderReference());
  });

  it('documents every field of the spec', async () => {
    const reference = await renderReference();
    for (const field of [
      'spec.secretName',
      'spec.scopes',
      'spec.rotation.gracePeriod',
      'spec.readers.serviceAccounts',
      'status.history[].reason',
    ]) {
      expect(reference).toContain(`| \`${field}\` |`);
    }
  });
});
