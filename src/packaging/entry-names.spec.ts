import { assignEntryNames, safeSegments } from './entry-names.js';

describe('safeSegments', () => {
  it.each([
    ['scene/B04.tif', ['scene', 'B04.tif']],
    ['..\\..\\evil.txt', ['evil.txt']],
    ['/abs/path', ['abs', 'path']],
    ['a//b/./c/..', ['a', 'b', 'c']],
    ['dir/..', ['dir']],
    ['bell\u0007and\nnewline', ['bell_and_newline']],
    ['e\u0301te\u0301.tif', ['été.tif']],
    ['..', ['unnamed']],
    // What Windows refuses or changes: its forbidden characters, trailing dots and spaces, device names.
    ['scene:2024-01-01T12:00:00Z.tif', ['scene_2024-01-01T12_00_00Z.tif']],
    ['a<b>c|d?e*f"g', ['a_b_c_d_e_f_g']],
    ['report.txt:hidden', ['report.txt_hidden']],
    ['a.txt.', ['a.txt']],
    ['notes. . ', ['notes']],
    ['CON', ['_CON']],
    ['dir/nul.txt', ['dir', '_nul.txt']],
    ['COM1.json', ['_COM1.json']],
    ['lpt¹', ['_lpt¹']],
    ['console.txt', ['console.txt']],
    ['COM10', ['COM10']],
    ['...', ['unnamed']],
    // Look-alikes that Windows' best-fit mapping turns into "." "/" "\\" (WorstFit).
    ['\uFF0E\uFF0E\uFF0F\uFF0E\uFF0E\uFF0Fx.txt', ['x.txt']],
    ['a\u2215b\uFF3Cc\u2044d\uFE68e', ['a', 'b', 'c', 'd', 'e']],
    ['報告\uFF0Epdf', ['報告.pdf']],
  ])('%j becomes %j', (key, expected) => {
    expect(safeSegments(key)).toEqual(expected);
  });

  it('shortens overlong segments to fit file systems', () => {
    const [segment] = safeSegments('x'.repeat(400));
    expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(200);
  });

  it('keeps the extension of a name it shortens, and leaves no trailing space where it cut', () => {
    const [long] = safeSegments(`${'x'.repeat(250)}.tif`);
    expect(long).toBe(`${'x'.repeat(196)}.tif`);
    const [spaced] = safeSegments(`${'x'.repeat(195)} ${'y'.repeat(10)}.tif`);
    expect(spaced).toBe(`${'x'.repeat(195)}.tif`);
    // An "extension" too long to be one is cut with the rest.
    const [dotted] = safeSegments(`a.${'x'.repeat(300)}`);
    expect(Buffer.byteLength(dotted)).toBe(200);
  });

  it('cuts overlong names by whole code points, never half an emoji', () => {
    // 199 bytes of ASCII, then a 4-byte emoji that does not fit: cut whole, not into a lone surrogate.
    const [segment] = safeSegments(`${'x'.repeat(199)}🙂tail`);
    expect(segment).toBe('x'.repeat(199));
    expect(segment.isWellFormed()).toBe(true);
  });

  it('replaces a lone surrogate in a key instead of writing invalid UTF-8', () => {
    expect(safeSegments('bad\uD83Dname')).toEqual(['bad\uFFFDname']);
  });
});

describe('assignEntryNames', () => {
  it('keeps two long names that differ only in a cut emoji distinct, as distinct UTF-8 bytes', () => {
    const base = 'x'.repeat(198);
    const names = assignEntryNames([
      { folder: 'inputs', relativeKey: `${base}🙂.tif` },
      { folder: 'inputs', relativeKey: `${base}🚀.tif` },
    ]);
    const bytes = names.map((name) => Buffer.from(name, 'utf8').toString('hex'));
    expect(new Set(bytes).size).toBe(2);
    for (const name of names) expect(name.isWellFormed()).toBe(true);
  });

  it('prefixes inputs and outputs and keeps distinct names as they are', () => {
    expect(assignEntryNames([
      { folder: 'inputs', relativeKey: 'a/b.tif' },
      { folder: 'outputs', relativeKey: 'a/b.tif' },
    ])).toEqual(['inputs/a/b.tif', 'outputs/a/b.tif']);
  });

  it('gives names that collide, also ignoring case, a stable suffix before the extension', () => {
    const sut = assignEntryNames([
      { folder: 'inputs', relativeKey: 'Scene.TIF' },
      { folder: 'inputs', relativeKey: 'scene.tif' },
      { folder: 'inputs', relativeKey: 'SCENE.tif' },
      { folder: 'inputs', relativeKey: '.env' },
      { folder: 'inputs', relativeKey: '.ENV' },
    ]);
    expect(sut).toEqual(['inputs/Scene.TIF', 'inputs/scene~2.tif', 'inputs/SCENE~3.tif', 'inputs/.env', 'inputs/.ENV~2']);
  });

  it('keeps a file and a folder of the same name from clashing on extraction', () => {
    const sut = assignEntryNames([
      { folder: 'outputs', relativeKey: 'tiles' },
      { folder: 'outputs', relativeKey: 'tiles/0.png' },
      { folder: 'outputs', relativeKey: 'maps/x.png' },
      { folder: 'outputs', relativeKey: 'MAPS' },
    ]);
    // The folders' files keep their paths; the files named like a folder, in any case, take the suffix.
    expect(sut).toEqual(['outputs/tiles~2', 'outputs/tiles/0.png', 'outputs/maps/x.png', 'outputs/MAPS~2']);
    const deeper = assignEntryNames([
      { folder: 'inputs', relativeKey: 'a/b' },
      { folder: 'inputs', relativeKey: 'a/b/c.tif' },
      { folder: 'inputs', relativeKey: 'a/b~2/d.tif' },
    ]);
    expect(deeper).toEqual(['inputs/a/b~3', 'inputs/a/b/c.tif', 'inputs/a/b~2/d.tif']);
  });

  it('tells apart names that Windows would make the same: a trailing dot, a device name, a long s', () => {
    const sut = assignEntryNames([
      { folder: 'inputs', relativeKey: 'a.txt' },
      { folder: 'inputs', relativeKey: 'a.txt.' },
      { folder: 'inputs', relativeKey: 'ſ.txt' },
      { folder: 'inputs', relativeKey: 's.txt' },
    ]);
    expect(sut).toEqual(['inputs/a.txt', 'inputs/a~2.txt', 'inputs/ſ.txt', 'inputs/s~2.txt']);
  });

  it('names the same sources the same way every time', () => {
    const sources = [{ folder: 'inputs' as const, relativeKey: 'A' }, { folder: 'inputs' as const, relativeKey: 'a' }];
    expect(assignEntryNames(sources)).toEqual(assignEntryNames(sources));
  });
});
