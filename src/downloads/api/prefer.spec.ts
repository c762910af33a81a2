import { preferredWaitSeconds } from './prefer.js';

describe('preferredWaitSeconds', () => {
  it.each([
    ['wait=10', 10],
    ['respond-async, wait=5', 5],
    ['WAIT = 7', 7],
    ['wait="3"', 3],
    ['wait=10; foo=bar', 10],
    [undefined, 0],
    ['', 0],
    ['wait=soon', 0],
    ['wait=-1', 0],
    ['handling=strict', 0],
    ['wait=99999999', 99999999],
    [`wait=${'9'.repeat(400)}`, Number.MAX_SAFE_INTEGER],
  ])('%j → %d', (header, expected) => {
    expect(preferredWaitSeconds(header)).toBe(expected);
  });
});
