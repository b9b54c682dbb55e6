// What deploy/prism.yaml must say, beyond what cfn-lint checks: the inlined
// CloudFront Function is cdn/viewer-request.js, and the cache policy, Origin
// Shield, buckets, IAM and the rest are as docs/deploy.md describes.
// Run by `make lint-deploy`: node --test deploy/ (the YAML is read with
// cfn-lint's own parser, which knows CloudFormation's short tags).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { embed, inlineCode, templateFile } from './function-code.mjs';

const require = createRequire(import.meta.url);
const { openFile } = require('./.tools/node_modules/cfn-lint/lib/parser.js');
const { KNOWN } = require('../cdn/viewer-request.js');

const t = openFile(templateFile);
const R = t.Resources;
const props = (name) => {
  assert.ok(R[name], `no resource ${name}`);
  return R[name].Properties;
};
const ofType = (type) => Object.keys(R).filter((k) => R[k].Type === type);

test('the inlined CloudFront Function is cdn/viewer-request.js without its export', () => {
  const code = props('ViewerRequestFunction').FunctionCode;
  assert.equal(code, inlineCode(), 'run `node deploy/sync-function.mjs`');
  assert.doesNotMatch(code, /module\.exports|typeof module/);
  assert.ok(Buffer.byteLength(code) <= 10240, 'CloudFront Functions allow 10 KB of code');
  // The template's text is exactly what sync-function.mjs would write.
  const text = readFileSync(templateFile, 'utf8');
  assert.equal(embed(text, inlineCode()), text);
  // And the inlined KNOWN is the tested one.
  const inlined = new Function(`${code}; return KNOWN;`)();
  assert.deepEqual(inlined, KNOWN);
});

test('the function runs on cloudfront-js-2.0 at viewer request of the image behaviour', () => {
  const f = props('ViewerRequestFunction');
  assert.equal(f.FunctionConfig.Runtime, 'cloudfront-js-2.0');
  assert.equal(f.AutoPublish, true);
  const dcb = props('Distribution').DistributionConfig.DefaultCacheBehavior;
  assert.deepEqual(dcb.FunctionAssociations, [
    { EventType: 'viewer-request', FunctionARN: { 'Fn::GetAtt': ['ViewerRequestFunction', 'FunctionARN'] } },
  ]);
});

test('cache policy: every query string, Accept, origin TTLs, no compression', () => {
  const c = props('ImagesCachePolicy').CachePolicyConfig;
  assert.equal(c.MinTTL, 0);
  assert.equal(c.DefaultTTL, 86400);
  assert.equal(c.MaxTTL, 31536000);
  const k = c.ParametersInCacheKeyAndForwardedToOrigin;
  assert.deepEqual(k.QueryStringsConfig, { QueryStringBehavior: 'all' });
  assert.deepEqual(k.HeadersConfig, { HeaderBehavior: 'whitelist', Headers: ['Accept'] });
  assert.deepEqual(k.CookiesConfig, { CookieBehavior: 'none' });
  assert.equal(k.EnableAcceptEncodingGzip, false);
  assert.equal(k.EnableAcceptEncodingBrotli, false);
  const o = props('ImagesOriginRequestPolicy').OriginRequestPolicyConfig;
  assert.deepEqual(o.HeadersConfig, { HeaderBehavior: 'none' }, 'no viewer Host (OAC) or other headers');
  const d = props('Distribution').DistributionConfig;
  assert.deepEqual(d.DefaultCacheBehavior.CachePolicyId, { Ref: 'ImagesCachePolicy' });
  assert.deepEqual(d.DefaultCacheBehavior.OriginRequestPolicyId, { Ref: 'ImagesOriginRequestPolicy' });
  for (const b of [d.DefaultCacheBehavior, ...d.CacheBehaviors]) {
    assert.equal(b.Compress, false, 'images are compressed already');
  }
});

test('one origin behind Origin Shield: the ALB (ecs) or the Function URL with OAC (lambda)', () => {
  const [o] = props('Distribution').DistributionConfig.Origins;
  assert.equal(o.OriginShield.Enabled, true);
  assert.deepEqual(o.DomainName['Fn::If'][0], 'IsEcs');
  assert.deepEqual(o.DomainName['Fn::If'][1], { 'Fn::GetAtt': ['LoadBalancer', 'DNSName'] });
  assert.match(JSON.stringify(o.DomainName['Fn::If'][2]), /FunctionUrl/);
  assert.deepEqual(o.OriginAccessControlId['Fn::If'][1], { 'Fn::GetAtt': ['FunctionUrlOriginAccess', 'Id'] });
  const oac = props('FunctionUrlOriginAccess').OriginAccessControlConfig;
  assert.equal(oac.OriginAccessControlOriginType, 'lambda');
  assert.equal(oac.SigningProtocol, 'sigv4');
  assert.equal(oac.SigningBehavior, 'always');
  assert.equal(props('FunctionUrl').AuthType, 'AWS_IAM');
  const perms = ofType('AWS::Lambda::Permission').map((n) => props(n)).filter((p) => p.Principal === 'cloudfront.amazonaws.com');
  assert.deepEqual(perms.map((p) => p.Action).sort(), ['lambda:InvokeFunction', 'lambda:InvokeFunctionUrl']);
  for (const p of perms) {
    assert.match(JSON.stringify(p.SourceArn), /distribution\/.*"Ref":"Distribution"/, 'scoped to this distribution');
  }
});

test('Mode conditions pick the ECS or the Lambda resources', () => {
  assert.deepEqual(t.Parameters.Mode.AllowedValues, ['ecs', 'lambda']);
  for (const n of ['Cluster', 'Service', 'TaskDefinition', 'LoadBalancer', 'TargetGroup', 'Listener', 'ScalableTarget', 'CpuScaling', 'RequestScaling', 'TaskRole']) {
    assert.equal(R[n].Condition, 'IsEcs', n);
  }
  for (const n of ['HttpFunction', 'FunctionUrl', 'FunctionUrlOriginAccess', 'HttpFunctionRole', 'CloudFrontInvokeUrl']) {
    assert.equal(R[n].Condition, 'IsLambda', n);
  }
  for (const n of ['EventFunction', 'EventPermission', 'Distribution', 'Redis', 'DerivedBucket']) {
    assert.equal(R[n].Condition, undefined, `${n} is in both modes`);
  }
});

test('originals: private, encrypted, retained, notifying the event function', () => {
  const b = props('OriginalsBucket');
  assert.deepEqual(b.PublicAccessBlockConfiguration, {
    BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
  });
  assert.equal(b.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
  assert.equal(R.OriginalsBucket.DeletionPolicy, 'Retain');
  assert.deepEqual(b.NotificationConfiguration.LambdaConfigurations.map((c) => c.Event), ['s3:ObjectCreated:*', 's3:ObjectRemoved:*']);
  for (const c of b.NotificationConfiguration.LambdaConfigurations) {
    assert.deepEqual(c.Function, { 'Fn::GetAtt': ['EventFunction', 'Arn'] });
  }
  assert.equal(R.OriginalsBucket.DependsOn, 'EventPermission');
  const p = props('EventPermission');
  assert.equal(p.Principal, 's3.amazonaws.com');
  assert.equal(p.Action, 'lambda:InvokeFunction');
  assert.match(JSON.stringify(p.SourceArn), /OriginalsBucketName/);
});

test('derived variants: private, encrypted, expired by a lifecycle rule', () => {
  const b = props('DerivedBucket');
  assert.equal(b.PublicAccessBlockConfiguration.RestrictPublicBuckets, true);
  assert.ok(b.BucketEncryption);
  const [rule] = b.LifecycleConfiguration.Rules;
  assert.equal(rule.Status, 'Enabled');
  assert.deepEqual(rule.ExpirationInDays, { Ref: 'DerivedExpirationDays' });
  assert.equal(t.Parameters.DerivedExpirationDays.Default, 30);
});

test('Prism gets its settings from the stack', () => {
  const env = Object.fromEntries(props('TaskDefinition').ContainerDefinitions[0].Environment.map((e) => [e.Name, e.Value]));
  for (const name of ['PRISM_STORAGE', 'PRISM_REDIS_URL', 'PRISM_DERIVED_URL', 'PRISM_CLOUDFRONT_DISTRIBUTION_ID', 'GOMEMLIMIT', 'PRISM_SIGNING_KEY']) {
    assert.ok(env[name], `task lacks ${name}`);
  }
  assert.equal(env.MALLOC_ARENA_MAX, '2');
  assert.match(JSON.stringify(env.PRISM_REDIS_URL), /rediss:\/\/.*"Redis","PrimaryEndPoint\.Address"/);
  const fn = props('EventFunction').Environment.Variables;
  for (const name of ['PRISM_STORAGE', 'PRISM_REDIS_URL', 'PRISM_DERIVED_URL', 'PRISM_CLOUDFRONT_DISTRIBUTION_ID', 'GOMEMLIMIT']) {
    assert.ok(fn[name], `event function lacks ${name}`);
  }
  assert.equal(props('HttpFunction').PackageType, 'Image');
  assert.equal(props('EventFunction').PackageType, 'Image');
});

test('every memory size a parameter allows has a GOMEMLIMIT and cache size', () => {
  for (const p of ['EcsMemory', 'LambdaMemorySize']) {
    for (const v of t.Parameters[p].AllowedValues) {
      const m = t.Mappings.Memory[String(v)];
      assert.ok(m, `Mappings.Memory lacks ${v}`);
      assert.equal(m.GoMemLimit, `${Number(v) / 2}MiB`);
      assert.equal(Number(m.CacheBytes), (Number(v) / 4) * 1024 * 1024);
    }
  }
});

test('autoscaling tracks CPU and requests per target', () => {
  const metrics = ['CpuScaling', 'RequestScaling'].map((n) => props(n).TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType);
  assert.deepEqual(metrics, ['ECSServiceAverageCPUUtilization', 'ALBRequestCountPerTarget']);
});

test('Redis sits in private subnets behind a group that admits Prism only', () => {
  const r = props('Redis');
  assert.equal(r.TransitEncryptionEnabled, true);
  assert.deepEqual(r.SecurityGroupIds, [{ Ref: 'RedisSecurityGroup' }]);
  const [ingress] = props('RedisSecurityGroup').SecurityGroupIngress;
  assert.deepEqual(ingress.SourceSecurityGroupId, { Ref: 'AppSecurityGroup' });
  assert.match(JSON.stringify(props('RedisSubnetGroup').SubnetIds), /PrivateSubnetA.*PrivateSubnetB/);
});

test('IAM: no wildcard actions or resources; Prism may touch its buckets and invalidate its distribution', () => {
  const allowed = new Set(['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:ListBucket', 'cloudfront:CreateInvalidation']);
  for (const role of ofType('AWS::IAM::Role')) {
    for (const policy of props(role).Policies || []) {
      for (const st of policy.PolicyDocument.Statement) {
        for (const a of [].concat(st.Action)) {
          assert.ok(allowed.has(a), `${role} allows ${a}`);
        }
        for (const r of [].concat(st.Resource)) {
          assert.notEqual(r, '*', `${role} on every resource`);
        }
        if ([].concat(st.Action).includes('cloudfront:CreateInvalidation')) {
          assert.match(JSON.stringify(st.Resource), /distribution\/\$\{Distribution\}/);
        }
      }
    }
  }
  const invalidators = ofType('AWS::IAM::Role').filter((r) => JSON.stringify(props(r)).includes('cloudfront:CreateInvalidation'));
  assert.deepEqual(invalidators.sort(), ['EventFunctionRole', 'TaskRole']);
});

test('outputs name the CDN domain and the buckets', () => {
  assert.deepEqual(t.Outputs.CdnDomain.Value, { 'Fn::GetAtt': ['Distribution', 'DomainName'] });
  assert.ok(t.Outputs.OriginalsBucketName);
  assert.ok(t.Outputs.DerivedBucketName);
});

test('the template file is where the tools expect it', () => {
  assert.equal(templateFile, fileURLToPath(new URL('./prism.yaml', import.meta.url)));
});
