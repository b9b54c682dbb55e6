// The CloudFront Function's code as deploy/prism.yaml inlines it: the text of
// cdn/viewer-request.js up to its Node-only export guard (CloudFront
// Functions have no `module`), shared by sync-function.mjs, which writes it
// into the template, and template.test.mjs, which checks they agree.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const functionFile = fileURLToPath(new URL('../cdn/viewer-request.js', import.meta.url));
export const templateFile = fileURLToPath(new URL('./prism.yaml', import.meta.url));

const GUARD = "if (typeof module !== 'undefined')";

// inlineCode returns the function's code without the export guard, ending
// in exactly one newline (what a YAML `|` block scalar yields).
export function inlineCode(source = readFileSync(functionFile, 'utf8')) {
  const at = source.lastIndexOf(GUARD);
  if (at < 0) {
    throw new Error(`${functionFile}: no export guard (${GUARD}) found`);
  }
  if (source.slice(at).split('\n').filter((l) => l.trim() !== '').length !== 1) {
    throw new Error(`${functionFile}: the export guard must be the file's last line`);
  }
  return source.slice(0, at).replace(/\s+$/, '') + '\n';
}

// FUNCTION_CODE_KEY matches the template line that opens the inlined code.
export const FUNCTION_CODE_KEY = /^( *)FunctionCode: \|\s*$/;

// embed returns template text with the FunctionCode block replaced by code.
export function embed(template, code) {
  const lines = template.split('\n');
  const start = lines.findIndex((l) => FUNCTION_CODE_KEY.test(l));
  if (start < 0 || lines.findIndex((l, i) => i > start && FUNCTION_CODE_KEY.test(l)) >= 0) {
    throw new Error('the template must have exactly one "FunctionCode: |" block');
  }
  const keyIndent = lines[start].match(FUNCTION_CODE_KEY)[1].length;
  const pad = ' '.repeat(keyIndent + 2);
  let end = start + 1;
  // The block runs over blank lines and lines indented deeper than its key.
  while (end < lines.length && (lines[end].trim() === '' || lines[end].search(/\S/) > keyIndent)) {
    end++;
  }
  // Blank lines at the block's end belong to the template's layout.
  while (end > start + 1 && lines[end - 1].trim() === '') {
    end--;
  }
  const body = code.replace(/\n$/, '').split('\n').map((l) => (l === '' ? '' : pad + l));
  return [...lines.slice(0, start + 1), ...body, ...lines.slice(end)].join('\n');
}
