// Proves that `make lint-deploy` is a real check: cfn-lint, given the
// @aws-cdk/cfnspec resource specification, accepts deploy/prism.yaml in
// every scenario and rejects copies of it with an unknown resource type, a
// misspelled property (top-level, nested, in a mode-specific resource), a
// missing required property or an unknown attribute.
// Run by `make lint-deploy` (after the tools are installed): node --test deploy/
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundledSpec, lint, lintSpec, REQUIRED_TYPES, SCENARIOS, swapSpec } from './lint.mjs';

const templateFile = new URL('./prism.yaml', import.meta.url);
const template = readFileSync(templateFile, 'utf8');
const [ecs, lambda] = SCENARIOS['prism.yaml'];
let dir;

before(() => {
  swapSpec();
  dir = mkdtempSync(join(tmpdir(), 'prism-lint-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
});

// broken writes the template with one edit to a temporary file.
function broken(name, from, to) {
  const at = template.indexOf(from);
  assert.ok(at >= 0, `the template no longer contains ${JSON.stringify(from)}: update this test`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, template.slice(0, at) + to + template.slice(at + from.length));
  return file;
}

test('the swapped-in specification has the types the bundled one lacks', () => {
  const bundled = JSON.parse(readFileSync(bundledSpec, 'utf8'));
  const current = JSON.parse(readFileSync(lintSpec, 'utf8'));
  for (const t of REQUIRED_TYPES) {
    assert.equal(bundled.ResourceTypes[t], undefined, `cfn-lint 1.9.7's own specification has ${t}`);
    assert.ok(current.ResourceTypes[t], `the specification cfn-lint reads lacks ${t}`);
  }
});

for (const s of SCENARIOS['prism.yaml']) {
  test(`the real template passes: ${s.name}`, () => {
    const { status, output } = lint(templateFile.pathname, s.parameters, { region: s.region });
    assert.equal(status, 0, output);
    assert.match(output, /0 crit/);
    assert.match(output, /0 warn/);
    assert.match(output, /Template valid!/);
  });
}

test('the real template passes with cfn-lint guessing every parameter', () => {
  // What a reviewer gets from `cfn-lint validate deploy/prism.yaml` alone.
  const { status, output } = lint(templateFile.pathname, {}, { guess: true });
  assert.equal(status, 0, output);
});

const rejected = [
  {
    name: 'misspelled resource type',
    from: 'Type: AWS::CloudFront::Function\n',
    to: 'Type: AWS::CloudFront::Functon\n',
    // (cfn-lint stops at the GetAtt of an unknown type: no such resource)
    want: /invalid Type of AWS::CloudFront::Functon|No such resource AWS::CloudFront::Functon/,
  },
  {
    name: 'unknown resource type',
    from: '  DerivedBucket:\n',
    to: '  Thumbnails:\n    Type: AWS::Prism::ImageCache\n    Properties: {Size: 1}\n  DerivedBucket:\n',
    want: /invalid Type of AWS::Prism::ImageCache/,
  },
  {
    name: 'misspelled property of a resource',
    from: 'BucketName: !Ref OriginalsBucketName',
    to: 'BucketNmae: !Ref OriginalsBucketName',
    want: /BucketNmae is not a valid property of AWS::S3::Bucket/,
  },
  {
    name: 'misspelled nested property (cache policy)',
    from: 'EnableAcceptEncodingBrotli: false',
    to: 'EnableAcceptEncodingBrotly: false',
    want: /EnableAcceptEncodingBrotly is not a valid property/,
  },
  {
    name: 'misspelled property deep in the distribution (Origin Shield)',
    from: 'OriginShieldRegion: !If',
    to: 'OriginShieldRegoin: !If',
    want: /OriginShieldRegoin is not a valid property/,
  },
  {
    name: 'misspelled property of the CloudFront Function',
    from: 'AutoPublish: true',
    to: 'AutoPublsh: true',
    want: /AutoPublsh is not a valid property of AWS::CloudFront::Function/,
  },
  {
    name: 'misspelled property of a Lambda-mode resource, linted as Mode=ecs',
    from: 'AuthType: AWS_IAM',
    to: 'AuthTpye: AWS_IAM',
    want: /AuthTpye is not a valid property of AWS::Lambda::Url/,
  },
  {
    name: 'misspelled property of the OAC',
    from: 'OriginAccessControlOriginType: lambda',
    to: 'OriginAccessControlType: lambda',
    want: /OriginAccessControlType is not a valid property/,
  },
  {
    name: 'missing required property',
    from: 'TargetFunctionArn: !GetAtt HttpFunction.Arn',
    to: 'Qualifier: live',
    want: /Required property TargetFunctionArn missing/,
  },
  {
    name: 'unknown attribute',
    from: '!GetAtt ViewerRequestFunction.FunctionARN',
    to: '!GetAtt ViewerRequestFunction.Arn',
    want: /No such attribute Arn on AWS::CloudFront::Function/,
  },
  {
    name: 'reference to a missing resource',
    from: 'CachePolicyId: !Ref ImagesCachePolicy',
    to: 'CachePolicyId: !Ref ImageCachePolicy',
    want: /ImageCachePolicy/,
  },
];

for (const r of rejected) {
  test(`rejected: ${r.name}`, () => {
    for (const s of [ecs, lambda]) {
      const { status, output } = lint(broken(r.name.replace(/\W+/g, '-'), r.from, r.to), s.parameters);
      assert.notEqual(status, 0, `cfn-lint accepted it (${s.name}):\n${output}`);
      assert.match(output, /Template invalid!|Unable to parse template!/);
      assert.match(output, r.want);
    }
  });
}
