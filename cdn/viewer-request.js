// Prism's CloudFront Function: runtime cloudfront-js-2.0, viewer-request event.
//
// It normalises the cache key before CloudFront looks it up:
//  - the query keeps only Prism's parameters (KNOWN), names lower-cased,
//    sorted, one value each (the first, as Prism's server reads it); utm_*,
//    fbclid, gclid and every other parameter are dropped;
//  - when the request negotiates its format (format=auto, fm=auto, or
//    auto=format with no explicit format), Accept becomes one of three
//    values, so the CDN holds at most three copies of a variant; otherwise
//    Accept is removed, since Prism ignores it then.
//
// The same code is inlined in deploy/prism.yaml (AWS::CloudFront::Function);
// deploy/template.test.mjs fails when the two differ. After editing this
// file run `node deploy/sync-function.mjs`.

// KNOWN: Prism's query parameters (prism.TransformParams) plus s, the URL
// signature. A Go test compares this list with the server's.
const KNOWN = [
  'w', 'h', 'fit', 'resize', 'lb', 'crop', 'crop_strategy', 'gravity', 'zoom', 'dpr',
  'quality', 'q', 'format', 'fm', 'auto', 'webp', 'background', 'bg',
  'trim', 'trim_threshold', 'ulb', 'rot', 'rotate', 'flip', 'fp-x', 'fp-y',
  'filter', 'brightness', 'contrast', 'colorize', 'smooth', 'blur', 'sharp', 'sharpen', 'strip',
  'mark', 'mark-w', 'mark-align', 'mark-pad', 'mark-alpha', 's'
];

// The Accept values the origin can see for format=auto.
var ACCEPT_AVIF = 'image/avif,image/webp';
var ACCEPT_WEBP = 'image/webp';

// firstValue is a query parameter's first value, or its only one.
function firstValue(p) {
  if (p && p.multiValue && p.multiValue.length > 0) {
    return p.multiValue[0].value;
  }
  return p ? p.value : undefined;
}

// decoded is s URL-decoded as a query component ('+' is a space), or s
// itself when its escapes are malformed.
function decoded(s) {
  s = String(s === undefined || s === null ? '' : s).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
}

// plain reads a value as Prism compares it: decoded, trimmed, lower case.
function plain(v) {
  return decoded(v).trim().toLowerCase();
}

// negotiates reports whether the kept query asks Prism to pick the format
// from Accept: an explicit format (format, else fm) wins over auto=format.
function negotiates(q) {
  var explicit = q.format || q.fm;
  if (explicit) {
    return plain(explicit.value) === 'auto';
  }
  if (q.auto) {
    var parts = plain(q.auto.value).split(',');
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].trim() === 'format') {
        return true;
      }
    }
  }
  return false;
}

// acceptClass maps a viewer's Accept header to one of the three values, as
// Prism's ParseAccept reads it: a type with q=0 is refused and wildcards do
// not count.
function acceptClass(header) {
  var avif = false;
  var webp = false;
  var parts = String(header || '').split(',');
  for (var i = 0; i < parts.length; i++) {
    var fields = parts[i].split(';');
    var type = fields[0].trim().toLowerCase();
    var refused = false;
    for (var j = 1; j < fields.length; j++) {
      var f = fields[j].replace(/\s/g, '').toLowerCase();
      if (f.indexOf('q=') === 0 && f.substring(2).replace(/[0.]/g, '') === '') {
        refused = true;
      }
    }
    if (type === 'image/avif') {
      avif = !refused;
    } else if (type === 'image/webp') {
      webp = !refused;
    }
  }
  if (avif) {
    return ACCEPT_AVIF;
  }
  return webp ? ACCEPT_WEBP : '';
}

// headerValue joins every value of a header CloudFront passed.
function headerValue(h) {
  if (!h) {
    return '';
  }
  if (h.multiValue && h.multiValue.length > 0) {
    var vals = [];
    for (var i = 0; i < h.multiValue.length; i++) {
      vals.push(h.multiValue[i].value);
    }
    return vals.join(',');
  }
  return h.value;
}

function handler(event) {
  var request = event.request;
  var query = request.querystring || {};
  var kept = {};
  var names = [];
  for (var name in query) {
    var lower = decoded(name).toLowerCase();
    if (KNOWN.indexOf(lower) < 0 || kept[lower] !== undefined) {
      continue;
    }
    var v = firstValue(query[name]);
    kept[lower] = { value: v === undefined || v === null ? '' : String(v) };
    names.push(lower);
  }
  names.sort();
  var sorted = {};
  for (var i = 0; i < names.length; i++) {
    sorted[names[i]] = kept[names[i]];
  }
  request.querystring = sorted;

  var headers = request.headers || {};
  var accept = negotiates(sorted) ? acceptClass(headerValue(headers.accept)) : '';
  if (accept) {
    headers.accept = { value: accept };
  } else {
    delete headers.accept;
  }
  request.headers = headers;
  return request;
}

if (typeof module !== 'undefined') { module.exports = { handler, KNOWN }; }
