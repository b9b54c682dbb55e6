#!/usr/bin/env node
// Validates every CloudFormation template in deploy/ with cfn-lint (npm,
// pinned in deploy/.tools/package.json), after giving cfn-lint the resource
// specification from @aws-cdk/cfnspec: the one cfn-lint 1.9.7 bundles
// predates AWS::CloudFront::Function, AWS::Lambda::Url and
// AWS::CloudFront::OriginAccessControl. See docs/deploy.md.
//
//   node deploy/lint.mjs            lint every deploy/*.yaml in every scenario
//   node deploy/lint.mjs FILE...    lint these templates
//
// `make lint-deploy` installs the tools first (npm ci) when they are missing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const deployDir = dirname(fileURLToPath(import.meta.url));
export const toolsDir = join(deployDir, '.tools');
const modules = join(toolsDir, 'node_modules');
export const cfnLintBin = join(modules, 'cfn-lint', 'lib', 'index.js');
// cfn-lint loads the specification with require('../data/aws_resources_specification.json').
export const lintSpec = join(modules, 'cfn-lint', 'data', 'aws_resources_specification.json');
export const bundledSpec = join(modules, 'cfn-lint', 'data', 'aws_resources_specification.bundled.json');
export const cdkSpec = join(modules, '@aws-cdk', 'cfnspec', 'spec', 'specification.json');

// The types this project needs that the bundled specification lacks.
export const REQUIRED_TYPES = [
  'AWS::CloudFront::Function',
  'AWS::CloudFront::OriginAccessControl',
  'AWS::Lambda::Url',
];

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

// swapSpec puts @aws-cdk/cfnspec's specification where cfn-lint reads its
// own, keeping the bundled one beside it once. It is idempotent.
export function swapSpec() {
  for (const f of [cfnLintBin, cdkSpec]) {
    if (!existsSync(f)) {
      throw new Error(`${f} is missing: run \`npm ci --prefix ${relative(process.cwd(), toolsDir)}\` (make lint-deploy does)`);
    }
  }
  const spec = JSON.parse(readFileSync(cdkSpec, 'utf8'));
  const missing = REQUIRED_TYPES.filter((t) => !spec.ResourceTypes || !spec.ResourceTypes[t]);
  if (missing.length > 0) {
    throw new Error(`${cdkSpec} lacks ${missing.join(', ')}`);
  }
  if (sha256(lintSpec) === sha256(cdkSpec)) {
    return { version: spec.ResourceSpecificationVersion, swapped: false };
  }
  if (!existsSync(bundledSpec)) {
    copyFileSync(lintSpec, bundledSpec);
  }
  copyFileSync(cdkSpec, lintSpec);
  return { version: spec.ResourceSpecificationVersion, swapped: true };
}

// cfn-lint's own pseudo AWS::Region, which a scenario may change.
export const DEFAULT_REGION = 'eu-west-1';
export const stackId = (region = DEFAULT_REGION) =>
  `arn:aws:cloudformation:${region}:123456789012:stack/prism/51af3dc0-da77-11e4-872e-1234567db123`;
export const STACK_ID = stackId();

// lint runs the cfn-lint CLI on file with the given parameter values. A
// parameter without a default must be given, unless guess is set (cfn-lint
// then makes up values, as it does when run with no flags). region is the
// stack's AWS::Region, which conditions read (InUsEast1: the CloudFront
// alarm). cfn-lint checks every resource whatever its Condition. It returns
// the exit status and the output, colours off.
export function lint(file, parameters = {}, { guess = false, region = DEFAULT_REGION } = {}) {
  // --verbose: a template cfn-lint cannot load says why, not just that.
  const args = [cfnLintBin, 'validate', file, '--verbose'];
  if (!guess) {
    args.push('--no-guess-parameters');
  }
  const pairs = Object.entries(parameters).map(([k, v]) => `${k}=${String(v).replace(/,/g, '\\,')}`);
  if (pairs.length > 0) {
    args.push('--parameters', pairs.join(','));
  }
  // cfn-lint's mock stack ID has no slashes; the template takes its last
  // segment apart (bucket suffix, origin secret), so give a real-shaped one.
  // (--pseudo must follow --parameters.)
  args.push('--pseudo', `AWS::StackId=${stackId(region)},AWS::StackName=prism,AWS::Region=${region}`);
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
  if (r.error) {
    throw r.error;
  }
  const output = (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, '');
  return { status: r.status, output };
}

// The deployments each template is linted as: cfn-lint resolves Fn::If with
// the parameter values, so each branch is checked in at least one of them.
// region, when given, is the stack's AWS::Region (default eu-west-1).
const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/prism';

export const SCENARIOS = {
  'prism.yaml': [
    { name: 'ecs, new VPC and bucket', parameters: { Mode: 'ecs', ImageUri: `${ECR}:1`, LambdaImageUri: `${ECR}:1-lambda`, OriginalsBucketName: 'acme-prism-originals' } },
    { name: 'lambda, new VPC and bucket', parameters: { Mode: 'lambda', ImageUri: `${ECR}:1-lambda`, OriginalsBucketName: 'acme-prism-originals' } },
    {
      name: 'ecs with event function, existing VPC and bucket, custom domain, Redis replicas, alarm topic, metrics scraper, in us-east-1',
      region: 'us-east-1',
      parameters: {
        Mode: 'ecs',
        ImageUri: `${ECR}:1`,
        LambdaImageUri: `${ECR}:1-lambda`,
        CpuArchitecture: 'arm64',
        VpcId: 'vpc-0abc1234',
        PublicSubnet1Id: 'subnet-0aaa1111',
        PublicSubnet2Id: 'subnet-0bbb2222',
        PrivateSubnet1Id: 'subnet-0ccc3333',
        PrivateSubnet2Id: 'subnet-0ddd4444',
        CloudFrontPrefixListId: 'pl-4fa04526',
        OriginalsBucketName: 'my-wordpress-uploads',
        CreateOriginalsBucket: 'false',
        DomainName: 'img.example.com',
        CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0f0f0f0f-1111-2222-3333-444444444444',
        CacheNodes: 2,
        EcsCpu: '2048',
        EcsMemory: '4096',
        MetricsScraperSecurityGroupId: 'sg-0123456789abcdef0',
        AlarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:prism-alarms',
        TransformP99AlarmMs: 5000,
      },
    },
    {
      name: 'lambda, existing VPC and bucket, alarm topic, in us-east-1',
      region: 'us-east-1',
      parameters: {
        Mode: 'lambda',
        ImageUri: `${ECR}:1-lambda`,
        VpcId: 'vpc-0abc1234',
        PublicSubnet1Id: 'subnet-0aaa1111',
        PublicSubnet2Id: 'subnet-0bbb2222',
        PrivateSubnet1Id: 'subnet-0ccc3333',
        PrivateSubnet2Id: 'subnet-0ddd4444',
        OriginalsBucketName: 'my-wordpress-uploads',
        CreateOriginalsBucket: 'false',
        LambdaMemorySize: 4096,
        LambdaTimeout: 45,
        OriginShieldRegion: 'us-east-1',
        AlarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:prism-alarms',
      },
    },
  ],
};

// templates lists deploy/*.yaml and deploy/*.yml.
export function templates() {
  return readdirSync(deployDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(deployDir, f));
}

function main(files) {
  const { version, swapped } = swapSpec();
  console.log(`cfn-lint ${JSON.parse(readFileSync(join(modules, 'cfn-lint', 'package.json'), 'utf8')).version}` +
    ` with resource specification ${version} from @aws-cdk/cfnspec${swapped ? ' (swapped in now)' : ''}`);
  let failed = 0;
  let passed = 0;
  for (const file of files) {
    const base = file.split('/').pop();
    const scenarios = SCENARIOS[base];
    if (!scenarios) {
      console.error(`${base}: no lint scenarios in deploy/lint.mjs SCENARIOS: add the template's parameter sets`);
      failed++;
      continue;
    }
    for (const s of scenarios) {
      const { status, output } = lint(file, s.parameters, { region: s.region });
      if (status === 0 && /Template valid!/.test(output) && !/[1-9]\d* (crit|warn)/.test(output)) {
        console.log(`ok   ${base} (${s.name})`);
        passed++;
      } else {
        console.log(`FAIL ${base} (${s.name}): cfn-lint exit ${status}\n${output}`);
        failed++;
      }
    }
  }
  console.log(`lint-deploy: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  try {
    process.exitCode = main(args.length > 0 ? args : templates());
  } catch (e) {
    console.error(`lint-deploy: ${e.message}`);
    process.exitCode = 1;
  }
}
