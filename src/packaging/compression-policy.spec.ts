import { shouldStore } from './compression-policy.js';

describe('shouldStore', () => {
  it.each(['x.tif', 'x.TIFF', 'x.jp2', 'x.png', 'x.jpg', 'x.webp', 'x.zip', 'x.gz', 'x.zst', 'x.nc', 'x.h5', 'x.parquet', 'no-extension', 'x.unknown'])(
    'stores %s in auto mode',
    (path) => expect(shouldStore(`inputs/${path}`, 'auto')).toBe(true),
  );

  it.each(['x.json', 'x.geojson', 'x.xml', 'x.csv', 'x.txt', 'x.TXT', 'x.yaml'])('deflates %s in auto mode', (path) => {
    expect(shouldStore(`outputs/${path}`, 'auto')).toBe(false);
  });

  it('obeys a forced mode', () => {
    expect(shouldStore('a.json', 'store')).toBe(true);
    expect(shouldStore('a.tif', 'deflate')).toBe(false);
  });
});
