#!/usr/bin/env node
// Copies cdn/viewer-request.js (less its Node export guard) into the
// FunctionCode of deploy/prism.yaml. Run it after editing the function;
// deploy/template.test.mjs fails while the two differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { embed, inlineCode, templateFile } from './function-code.mjs';

const before = readFileSync(templateFile, 'utf8');
const after = embed(before, inlineCode());
if (after === before) {
  console.log(`${templateFile}: FunctionCode already matches cdn/viewer-request.js`);
} else {
  writeFileSync(templateFile, after);
  console.log(`${templateFile}: FunctionCode updated from cdn/viewer-request.js`);
}
