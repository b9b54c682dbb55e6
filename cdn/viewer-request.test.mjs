// Tests of the CloudFront Function (cdn/viewer-request.js) with Node's test
// runner: `node --test cdn/`. Each case is a viewer request, shaped as
// CloudFront Functions passes it (lower-case header names, {value} objects,
// multiValue for repeated names), and the request the function must return.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const source = readFileSync(new URL('./viewer-request.js', import.meta.url), 'utf8');
const { handler, KNOWN } = require('./viewer-request.js');

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const FIREFOX = 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5';
const FIREFOX_OLD = 'image/webp,*/*';
const SAFARI_17 = 'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5';
const SAFARI_14 = 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5';
const SAFARI_13 = 'image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5';
const IE11 = 'image/png, image/svg+xml, image/*;q=0.8, */*;q=0.5';

const AVIF = 'image/avif,image/webp';
const WEBP = 'image/webp';

// q turns [name, value] pairs into CloudFront's querystring object, with
// multiValue (every value, in order) for a repeated name.
function q(...pairs) {
  const out = {};
  for (const [name, value] of pairs) {
    if (!(name in out)) {
      out[name] = { value };
    } else {
      const p = out[name];
      p.multiValue = p.multiValue || [{ value: p.value }];
      p.multiValue.push({ value });
    }
  }
  return out;
}

function event(querystring, headers = {}) {
  return {
    version: '1.0',
    context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE' },
    viewer: { ip: '192.0.2.1' },
    request: {
      method: 'GET',
      uri: '/uploads/2026/11/cat.jpg',
      querystring,
      headers: { host: { value: 'd111111abcdef8.cloudfront.net' }, ...headers },
      cookies: {},
    },
  };
}

function accept(value) {
  return { accept: { value } };
}

// name, input query, input headers, expected query ([name, value] pairs in
// order), expected accept (undefined: the header is removed).
const cases = [
  ['empty query', {}, {}, [], undefined],
  ['no querystring field', undefined, {}, [], undefined],
  ['one parameter', q(['w', '400']), {}, [['w', '400']], undefined],
  ['unknown parameters dropped', q(['w', '400'], ['foo', 'bar'], ['callback', 'x']), {}, [['w', '400']], undefined],
  ['tracking only', q(['utm_source', 'news'], ['utm_medium', 'email'], ['fbclid', 'IwAR0x'], ['gclid', 'Cj0K']), {}, [], undefined],
  ['tracking mixed in', q(['utm_campaign', 'fall'], ['h', '300'], ['gclid', 'abc'], ['quality', '80'], ['mc_eid', '1']), {},
    [['h', '300'], ['quality', '80']], undefined],
  ['names case-folded', q(['W', '400'], ['Quality', '80'], ['CROP_STRATEGY', 'smart']), {},
    [['crop_strategy', 'smart'], ['quality', '80'], ['w', '400']], undefined],
  ['values untouched', q(['gravity', 'NorthEast'], ['resize', '400,300'], ['bg', '%23fff']), {},
    [['bg', '%23fff'], ['gravity', 'NorthEast'], ['resize', '400,300']], undefined],
  ['Photon vocabulary kept, values untouched', q(['w', '50%'], ['mark-align', 'top,left'], ['fp-x', '0.3'], ['filter', 'grayscale'], ['mark', 'logos%2Fa.png']), {},
    [['filter', 'grayscale'], ['fp-x', '0.3'], ['mark', 'logos%2Fa.png'], ['mark-align', 'top,left'], ['w', '50%']], undefined],
  ['sorted by name', q(['zoom', '2'], ['w', '400'], ['crop', '0,0,50,50'], ['h', '300'], ['dpr', '2']), {},
    [['crop', '0,0,50,50'], ['dpr', '2'], ['h', '300'], ['w', '400'], ['zoom', '2']], undefined],
  ['repeated: first value wins', q(['w', '400'], ['w', '800'], ['w', '1200']), {}, [['w', '400']], undefined],
  ['repeated across case: first seen wins', q(['W', '100'], ['w', '200']), {}, [['w', '100']], undefined],
  ['multiValue with value missing', { w: { multiValue: [{ value: '640' }, { value: '320' }] } }, {}, [['w', '640']], undefined],
  ['empty value kept', q(['w', ''], ['webp', '1']), {}, [['w', ''], ['webp', '1']], undefined],
  ['signature kept', q(['w', '400'], ['s', 'Zm9vYmFy-_x'], ['utm_source', 'x']), {}, [['s', 'Zm9vYmFy-_x'], ['w', '400']], undefined],
  ['every known parameter kept', q(...KNOWN.map((n) => [n, 'v'])), {}, [...KNOWN].sort().map((n) => [n, 'v']), undefined],
  ['encoded names decoded', q(['%77', '400'], ['Q%55ALITY', '80']), {}, [['quality', '80'], ['w', '400']], undefined],
  ['names that merely contain known ones dropped', q(['width', '400'], ['ww', '1'], ['s2', 'x'], ['w ', '3']), {}, [], undefined],

  // Accept is removed unless the format is negotiated.
  ['no auto: accept removed', q(['w', '400']), accept(CHROME), [['w', '400']], undefined],
  ['original: accept removed', {}, accept(FIREFOX), [], undefined],
  ['explicit format: accept removed', q(['w', '400'], ['fm', 'webp']), accept(CHROME), [['fm', 'webp'], ['w', '400']], undefined],
  ['webp=1 is not auto', q(['webp', '1']), accept(CHROME), [['webp', '1']], undefined],
  ['explicit format wins over auto=format', q(['auto', 'format'], ['format', 'jpeg']), accept(CHROME),
    [['auto', 'format'], ['format', 'jpeg']], undefined],
  ['format wins over fm', q(['fm', 'auto'], ['format', 'png']), accept(CHROME), [['fm', 'auto'], ['format', 'png']], undefined],
  ['fm=auto when format says auto', q(['fm', 'png'], ['format', 'auto']), accept(CHROME), [['fm', 'png'], ['format', 'auto']], AVIF],
  ['auto=compress only', q(['auto', 'compress']), accept(CHROME), [['auto', 'compress']], undefined],
  ['auto=formats is not format', q(['auto', 'formats']), accept(CHROME), [['auto', 'formats']], undefined],

  // format=auto: three classes.
  ['format=auto, Chrome', q(['w', '600'], ['format', 'auto']), accept(CHROME), [['format', 'auto'], ['w', '600']], AVIF],
  ['format=auto, Firefox', q(['format', 'auto']), accept(FIREFOX), [['format', 'auto']], AVIF],
  ['format=auto, old Firefox', q(['format', 'auto']), accept(FIREFOX_OLD), [['format', 'auto']], WEBP],
  ['format=auto, Safari 17', q(['format', 'auto']), accept(SAFARI_17), [['format', 'auto']], AVIF],
  ['format=auto, Safari 14', q(['format', 'auto']), accept(SAFARI_14), [['format', 'auto']], WEBP],
  ['format=auto, Safari 13', q(['format', 'auto']), accept(SAFARI_13), [['format', 'auto']], undefined],
  ['format=auto, IE 11', q(['format', 'auto']), accept(IE11), [['format', 'auto']], undefined],
  ['format=auto, */* only', q(['format', 'auto']), accept('*/*'), [['format', 'auto']], undefined],
  ['format=auto, no accept header', q(['format', 'auto']), {}, [['format', 'auto']], undefined],
  ['format=auto, empty accept', q(['format', 'auto']), accept(''), [['format', 'auto']], undefined],
  ['fm=auto, Chrome', q(['fm', 'auto']), accept(CHROME), [['fm', 'auto']], AVIF],
  ['FORMAT=AUTO, upper case', q(['FORMAT', 'AUTO']), accept(SAFARI_14), [['format', 'AUTO']], WEBP],
  ['format=%20auto, encoded space', q(['format', '%20auto']), accept(SAFARI_14), [['format', '%20auto']], WEBP],
  ['auto=format', q(['auto', 'format']), accept(CHROME), [['auto', 'format']], AVIF],
  ['auto=compress,format', q(['auto', 'compress,format']), accept(SAFARI_14), [['auto', 'compress,format']], WEBP],
  ['auto=compress%2CFormat, encoded comma', q(['auto', 'compress%2CFormat']), accept(CHROME), [['auto', 'compress%2CFormat']], AVIF],
  ['auto=enhance, format with spaces', q(['auto', 'enhance, format']), accept(FIREFOX), [['auto', 'enhance, format']], AVIF],
  ['Auto=Format, upper case', q(['Auto', 'Format']), accept(CHROME), [['auto', 'Format']], AVIF],
  ['repeated auto: first value counts', q(['auto', 'compress'], ['auto', 'format']), accept(CHROME), [['auto', 'compress']], undefined],
  ['avif refused with q=0', q(['format', 'auto']), accept('image/avif;q=0,image/webp,*/*'), [['format', 'auto']], WEBP],
  ['both refused with q=0.0', q(['format', 'auto']), accept('image/avif;q=0.0,image/webp; q=0,*/*'), [['format', 'auto']], undefined],
  ['q=0.5 still accepts', q(['format', 'auto']), accept('image/webp;q=0.5,*/*'), [['format', 'auto']], WEBP],
  ['media types case-insensitive', q(['format', 'auto']), accept('Image/AVIF, Image/WebP'), [['format', 'auto']], AVIF],
  ['accept as multiValue header', q(['format', 'auto']),
    { accept: { value: 'image/webp', multiValue: [{ value: 'image/webp' }, { value: 'image/avif' }] } }, [['format', 'auto']], AVIF],
  ['auto with tracking parameters', q(['utm_source', 'x'], ['format', 'auto'], ['w', '400'], ['fbclid', 'y']), accept(CHROME),
    [['format', 'auto'], ['w', '400']], AVIF],
];

for (const [name, query, headers, wantQuery, wantAccept] of cases) {
  test(name, () => {
    const ev = event(query, headers);
    const out = handler(ev);
    assert.equal(out, ev.request, 'returns the request');
    assert.deepEqual(Object.entries(out.querystring), wantQuery.map(([n, v]) => [n, { value: v }]));
    if (wantAccept === undefined) {
      assert.equal('accept' in out.headers, false, `accept left as ${JSON.stringify(out.headers.accept)}`);
    } else {
      assert.deepEqual(out.headers.accept, { value: wantAccept });
    }
    assert.deepEqual(out.headers.host, { value: 'd111111abcdef8.cloudfront.net' }, 'other headers untouched');
    assert.equal(out.uri, '/uploads/2026/11/cat.jpg');
    assert.equal(out.method, 'GET');
  });
}

test('idempotent: a rewritten request rewrites to itself', () => {
  for (const [, query, headers] of cases) {
    const once = handler(event(query, headers));
    const again = handler(event(structuredClone(once.querystring), structuredClone(once.headers)));
    assert.deepEqual(again.querystring, once.querystring);
    assert.deepEqual(again.headers, once.headers);
  }
});

test('at most three Accept values reach the origin', () => {
  const seen = new Set();
  for (const a of [CHROME, FIREFOX, FIREFOX_OLD, SAFARI_17, SAFARI_14, SAFARI_13, IE11, '*/*', '', 'image/jxl', 'text/html']) {
    const out = handler(event(q(['format', 'auto']), accept(a)));
    seen.add(out.headers.accept ? out.headers.accept.value : '(none)');
  }
  assert.deepEqual([...seen].sort(), ['(none)', AVIF, WEBP].sort());
});

test('KNOWN is the server parameter list plus s', () => {
  assert.deepEqual(KNOWN, [
    'w', 'h', 'fit', 'resize', 'lb', 'crop', 'crop_strategy', 'gravity', 'zoom', 'dpr',
    'quality', 'q', 'format', 'fm', 'auto', 'webp', 'background', 'bg',
    'trim', 'trim_threshold', 'ulb', 'rot', 'rotate', 'flip', 'fp-x', 'fp-y',
    'filter', 'brightness', 'contrast', 'colorize', 'smooth', 'blur', 'sharp', 'sharpen', 'strip',
    'mark', 'mark-w', 'mark-align', 'mark-pad', 'mark-alpha', 's',
  ]);
});

// CloudFront Functions have no module system: the file must run as a plain
// script where `module` and `require` are undefined, define handler at the
// top level, and stay under the 10 KB code limit.
test('runs as a cloudfront-js-2.0 script without module or require', () => {
  assert.doesNotMatch(source, /\brequire\s*\(/);
  assert.doesNotMatch(source, /\bimport\b|\bexport\b|\basync\b|\bawait\b/);
  const context = vm.createContext({});
  vm.runInContext(source, context, { filename: 'viewer-request.js' });
  assert.equal(typeof context.handler, 'function');
  const out = vm.runInContext(
    'handler({request:{method:"GET",uri:"/a.jpg",querystring:{Utm_Source:{value:"x"},W:{value:"9"},format:{value:"auto"}},headers:{accept:{value:"image/webp"}}}})',
    context,
  );
  assert.equal(JSON.stringify(out.querystring), '{"format":{"value":"auto"},"w":{"value":"9"}}');
  assert.equal(out.headers.accept.value, WEBP);
  assert.ok(Buffer.byteLength(source) < 10240, `${Buffer.byteLength(source)} bytes: CloudFront Functions allow 10 KB`);
});
