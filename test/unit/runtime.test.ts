import { describe, expect, it } from 'vitest';

import packageJson from '../../package.json' with { type: 'json' };

describe('runtime', () => {
  it('runs the suite on Node.js 24, the version pinned in package.json', () => {
    const pinned = packageJson.devDependencies.node;
    expect(process.versions.node.split('.')[0]).toBe('24');
    expect(process.versions.node).toBe(pinned);
  });
});
