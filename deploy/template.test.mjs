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
import { stackId } from './lint.mjs';

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

// ------------------------------------------------------- alarms and dashboard
// deployment evaluates the template's intrinsic functions as CloudFormation
// would for one deployment: the parameters' defaults overridden by params,
// the stack "prism" in region, and dummy values for resources (Ref X is
// "ref-X", GetAtt X.A is "att-X.A"). It records the resources it was asked
// for, so that a test can check that each exists in that deployment.
const NO_VALUE = Symbol('AWS::NoValue');
function deployment({ mode = 'ecs', region = 'eu-west-1', params = {} } = {}) {
  const values = { Mode: mode, ...params };
  for (const [k, p] of Object.entries(t.Parameters)) {
    if (!(k in values) && p.Default !== undefined) {
      values[k] = String(p.Default);
    }
  }
  const pseudo = {
    'AWS::Region': region, 'AWS::StackName': 'prism', 'AWS::StackId': stackId(region),
    'AWS::AccountId': '123456789012', 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com',
  };
  const referenced = new Set();
  const resource = (name) => {
    assert.ok(R[name], `no resource ${name}`);
    referenced.add(name);
  };
  const ref = (name) => {
    if (name === 'AWS::NoValue') {
      return NO_VALUE;
    }
    if (name in pseudo) {
      return pseudo[name];
    }
    if (name in t.Parameters) {
      assert.ok(name in values, `parameter ${name} has no value`);
      return values[name];
    }
    resource(name);
    return `ref-${name}`;
  };
  const getAtt = (name, attr) => {
    resource(name);
    return `att-${name}.${attr}`;
  };
  const cond = (name) => {
    assert.ok(t.Conditions[name], `no condition ${name}`);
    return ev(t.Conditions[name]) === true;
  };
  const sub = (str, vars = {}) => str.replace(/\$\{([^}]*)\}/g, (_, name) => {
    if (name.startsWith('!')) {
      return `\${${name.slice(1)}}`;
    }
    if (name in vars) {
      return String(ev(vars[name]));
    }
    const dot = name.indexOf('.');
    if (dot > 0 && !name.startsWith('AWS::')) {
      return getAtt(name.slice(0, dot), name.slice(dot + 1));
    }
    return String(ref(name));
  });
  function ev(node) {
    if (Array.isArray(node)) {
      return node.map(ev).filter((v) => v !== NO_VALUE);
    }
    if (node === null || typeof node !== 'object') {
      return node;
    }
    const keys = Object.keys(node);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0] === 'Condition' || keys[0].startsWith('Fn::'))) {
      const a = node[keys[0]];
      switch (keys[0]) {
        case 'Ref': return ref(a);
        case 'Condition': return cond(a);
        case 'Fn::GetAtt': {
          const [name, ...attr] = typeof a === 'string' ? a.split('.') : a;
          return getAtt(name, attr.join('.'));
        }
        case 'Fn::If': return ev(cond(a[0]) ? a[1] : a[2]);
        case 'Fn::Equals': return String(ev(a[0])) === String(ev(a[1]));
        case 'Fn::Not': return !ev(a[0]);
        case 'Fn::Or': return a.some((c) => ev(c) === true);
        case 'Fn::And': return a.every((c) => ev(c) === true);
        case 'Fn::Join': return ev(a[1]).join(a[0]);
        case 'Fn::Select': return ev(a[1])[Number(ev(a[0]))];
        case 'Fn::Split': return String(ev(a[1])).split(a[0]);
        case 'Fn::FindInMap': {
          const [m, k1, k2] = a.map(ev);
          return t.Mappings[m][k1][k2];
        }
        case 'Fn::GetAZs': return [`${region}a`, `${region}b`];
        case 'Fn::Sub': return typeof a === 'string' ? sub(a) : sub(a[0], a[1]);
        default: assert.fail(`the test cannot evaluate ${keys[0]}`);
      }
    }
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      const r = ev(v);
      if (r !== NO_VALUE) {
        out[k] = r;
      }
    }
    return out;
  }
  const active = (name) => R[name].Condition === undefined || cond(R[name].Condition);
  return { ev, cond, active, referenced, props: (name) => ev(R[name].Properties) };
}

const MODES = ['ecs', 'lambda'];
const REGIONS = ['eu-west-1', 'us-east-1'];
const ALARMS = {
  both: ['Prism5xxAlarm', 'Prism429Alarm', 'TransformP99Alarm'],
  ecs: ['EcsCpuAlarm', 'EcsMemoryAlarm'],
  lambda: ['LambdaErrorsAlarm', 'LambdaThrottlesAlarm', 'LambdaDurationAlarm'],
  usEast1: ['CloudFront5xxAlarm'],
};
// What Prism's EMF lines carry (README, Metrics and logs: CloudWatch).
const EMF = {
  namespace: 'Prism/prism', // Prism/${AWS::StackName}, the stack being "prism"
  metrics: ['Requests', 'Duration', 'Status5xx', 'Status429', 'QueueTime', 'FetchTime', 'DecodeTime', 'ProcessTime', 'EncodeTime', 'OutputBytes'],
  // The dimension sets each metric is published under (app/metrics.go).
  dimensionSets: (metric) => {
    if (metric === 'Requests') {
      return ['Service', 'Route,Service', 'Cache,Route,Service', 'Code,Route,Service'];
    }
    if (['Duration', 'Status5xx', 'Status429'].includes(metric)) {
      return ['Service', 'Route,Service', 'Cache,Route,Service'];
    }
    return ['Service', 'Route,Service'];
  },
  routes: ['transform', 'original', 'upload', 'metadata', 'health', 'other'],
  caches: ['miss', 'hit-memory', 'hit-derived', 'hit-metadata', 'hit-missing', 'original', 'none'],
};
const dims = (list) => Object.fromEntries((list || []).map((d) => [d.Name, d.Value]));

test('alarms: Prism\'s in both modes, ECS or Lambda by mode, CloudFront only in us-east-1', () => {
  const all = Object.values(ALARMS).flat().sort();
  assert.deepEqual(ofType('AWS::CloudWatch::Alarm').sort(), all);
  for (const mode of MODES) {
    for (const region of REGIONS) {
      const d = deployment({ mode, region });
      const want = [...ALARMS.both, ...ALARMS[mode], ...(region === 'us-east-1' ? ALARMS.usEast1 : [])].sort();
      assert.deepEqual(all.filter(d.active), want, `${mode} in ${region}`);
    }
  }
  for (const n of ALARMS.ecs) {
    assert.equal(R[n].Condition, 'IsEcs', n);
  }
  for (const n of ALARMS.lambda) {
    assert.equal(R[n].Condition, 'IsLambda', n);
  }
  assert.equal(R.CloudFront5xxAlarm.Condition, 'InUsEast1');
  assert.deepEqual(t.Conditions.InUsEast1, { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] });
});

test('alarms watch the metrics Prism, ECS, Lambda and CloudFront publish', () => {
  const byMode = { ecs: deployment({ mode: 'ecs', region: 'us-east-1' }), lambda: deployment({ mode: 'lambda', region: 'us-east-1' }) };
  const alarm = (name, mode = 'ecs') => {
    const d = byMode[mode];
    assert.ok(d.active(name), `${name} in ${mode}`);
    return d.props(name);
  };
  const names = new Set();
  for (const mode of MODES) {
    for (const n of ofType('AWS::CloudWatch::Alarm').filter(byMode[mode].active)) {
      const p = byMode[mode].props(n);
      assert.match(p.AlarmName, /^prism-prism-/, `${n} is named after the stack`);
      names.add(p.AlarmName);
      assert.ok(p.AlarmDescription, `${n} says what it means`);
      assert.ok(p.EvaluationPeriods >= 1);
      assert.ok(!p.DatapointsToAlarm || p.DatapointsToAlarm <= p.EvaluationPeriods, n);
    }
  }
  assert.equal(names.size, Object.values(ALARMS).flat().length, 'alarm names are unique');

  for (const [n, metric] of [['Prism5xxAlarm', 'Status5xx'], ['Prism429Alarm', 'Status429']]) {
    const p = alarm(n);
    assert.equal(p.Namespace, EMF.namespace, n);
    assert.equal(p.MetricName, metric);
    assert.deepEqual(dims(p.Dimensions), { Service: 'prism' });
    assert.equal(p.Statistic, 'Average', 'the average of a 0-or-1 count is the rate');
    assert.ok(p.Threshold > 0 && p.Threshold < 1, `${n}: a rate is a fraction`);
    assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(p.TreatMissingData, 'notBreaching', 'no requests is no alarm');
  }
  const p99 = alarm('TransformP99Alarm');
  assert.equal(p99.Namespace, EMF.namespace);
  assert.equal(p99.MetricName, 'Duration');
  assert.deepEqual(dims(p99.Dimensions), { Service: 'prism', Route: 'transform' });
  assert.equal(p99.ExtendedStatistic, 'p99');
  assert.equal(p99.Statistic, undefined);
  assert.deepEqual(R.TransformP99Alarm.Properties.Threshold, { Ref: 'TransformP99AlarmMs' });
  assert.equal(t.Parameters.TransformP99AlarmMs.Default, 3000);

  for (const [n, metric, stat] of [['EcsCpuAlarm', 'CPUUtilization', 'Average'], ['EcsMemoryAlarm', 'MemoryUtilization', 'Maximum']]) {
    const p = alarm(n, 'ecs');
    assert.equal(p.Namespace, 'AWS/ECS');
    assert.equal(p.MetricName, metric);
    assert.equal(p.Statistic, stat);
    assert.deepEqual(dims(p.Dimensions), { ClusterName: 'ref-Cluster', ServiceName: 'att-Service.Name' });
    assert.ok(p.Threshold >= 80 && p.Threshold < 100, `${n} threshold is a percentage`);
  }
  for (const [n, metric] of [['LambdaErrorsAlarm', 'Errors'], ['LambdaThrottlesAlarm', 'Throttles']]) {
    const p = alarm(n, 'lambda');
    assert.equal(p.Namespace, 'AWS/Lambda');
    assert.equal(p.MetricName, metric);
    assert.equal(p.Statistic, 'Sum');
    assert.deepEqual(dims(p.Dimensions), { FunctionName: 'ref-HttpFunction' });
  }

  // Duration near the timeout: metric math turns the longest invocation
  // into a percentage of LambdaTimeout, whatever it is set to.
  for (const timeout of [3, 30, 45, 60]) {
    const p = deployment({ mode: 'lambda', params: { LambdaTimeout: String(timeout) } }).props('LambdaDurationAlarm');
    assert.equal(p.MetricName, undefined);
    const stats = p.Metrics.filter((m) => m.MetricStat);
    const exprs = p.Metrics.filter((m) => m.Expression);
    assert.equal(stats.length, 1);
    assert.equal(exprs.length, 1);
    const [{ Id: id, MetricStat: ms, ReturnData: statReturns }] = stats;
    assert.equal(statReturns, false);
    assert.equal(ms.Metric.Namespace, 'AWS/Lambda');
    assert.equal(ms.Metric.MetricName, 'Duration');
    assert.deepEqual(dims(ms.Metric.Dimensions), { FunctionName: 'ref-HttpFunction' });
    assert.equal(ms.Stat, 'Maximum');
    assert.equal(exprs[0].ReturnData, true);
    const at = (ms) => new Function(id, `return ${exprs[0].Expression};`)(ms);
    assert.equal(at(timeout * 1000), 100, `timeout ${timeout} s`);
    assert.ok(p.Threshold >= 80 && p.Threshold <= 90, 'near the timeout: 80-90% of it');
    assert.ok(at(timeout * 1000 * 0.95) > p.Threshold);
    assert.ok(at(timeout * 1000 * 0.5) < p.Threshold);
  }

  const cf = alarm('CloudFront5xxAlarm', 'lambda');
  assert.equal(cf.Namespace, 'AWS/CloudFront');
  assert.equal(cf.MetricName, '5xxErrorRate');
  assert.deepEqual(dims(cf.Dimensions), { DistributionId: 'ref-Distribution', Region: 'Global' });
  assert.equal(alarm('CloudFront5xxAlarm', 'ecs').MetricName, '5xxErrorRate');
});

test('AlarmTopicArn: an optional SNS topic, the ALARM and OK action of every alarm when set', () => {
  const p = t.Parameters.AlarmTopicArn;
  assert.equal(p.Type, 'String');
  assert.equal(p.Default, '');
  const pattern = new RegExp(p.AllowedPattern);
  assert.match('', pattern);
  assert.match('arn:aws:sns:eu-west-1:123456789012:prism-alarms', pattern);
  assert.doesNotMatch('prism-alarms', pattern);
  const groups = t.Metadata['AWS::CloudFormation::Interface'].ParameterGroups;
  const grouped = groups.flatMap((g) => g.Parameters);
  for (const name of Object.keys(t.Parameters)) {
    assert.equal(grouped.filter((n) => n === name).length, 1, `${name} is in one parameter group`);
  }
  assert.ok(groups.find((g) => g.Parameters.includes('AlarmTopicArn') && g.Parameters.includes('TransformP99AlarmMs')));

  const topic = 'arn:aws:sns:us-east-1:123456789012:prism-alarms';
  for (const mode of MODES) {
    const without = deployment({ mode, region: 'us-east-1' });
    const withTopic = deployment({ mode, region: 'us-east-1', params: { AlarmTopicArn: topic } });
    const alarms = ofType('AWS::CloudWatch::Alarm').filter(without.active);
    assert.ok(alarms.length >= 6);
    for (const n of alarms) {
      const a = without.props(n);
      assert.equal(a.AlarmActions, undefined, `${n} has no actions without a topic`);
      assert.equal(a.OKActions, undefined, n);
      assert.equal(a.InsufficientDataActions, undefined, n);
      const b = withTopic.props(n);
      assert.deepEqual(b.AlarmActions, [topic], n);
      assert.deepEqual(b.OKActions, [topic], n);
      assert.equal(b.InsufficientDataActions, undefined, n);
    }
  }
});

// metricRows reads a dashboard widget's metrics as CloudWatch does, "." in a
// position repeating the row above.
function metricRows(widget) {
  const rows = [];
  let previous = [];
  for (const row of widget.properties.metrics) {
    const last = row[row.length - 1];
    const options = last !== null && typeof last === 'object' ? last : {};
    const fields = row.slice(0, options === last ? -1 : row.length).map((v, i) => (v === '.' ? previous[i] : v));
    previous = fields;
    if (fields.length === 0) {
      assert.ok(options.expression, `a row without a metric is an expression: ${JSON.stringify(row)}`);
      rows.push({ expression: options.expression, id: options.id });
      continue;
    }
    assert.equal(fields.length % 2, 0, `namespace, name and name/value pairs: ${JSON.stringify(row)}`);
    const dimensions = {};
    for (let i = 2; i < fields.length; i += 2) {
      dimensions[fields[i]] = fields[i + 1];
    }
    rows.push({
      namespace: fields[0], name: fields[1], dimensions,
      stat: options.stat || widget.properties.stat, id: options.id,
    });
  }
  return rows;
}

test('the dashboard: JSON in each mode, over Prism\'s EMF metrics and AWS\'s only', () => {
  assert.equal(ofType('AWS::CloudWatch::Dashboard').length, 1);
  assert.equal(R.Dashboard.Condition, undefined, 'in both modes');
  const aws = { ecs: ['AWS/ECS', 'AWS/CloudFront'], lambda: ['AWS/Lambda', 'AWS/CloudFront'] };
  for (const mode of MODES) {
    for (const region of REGIONS) {
      const d = deployment({ mode, region });
      const p = d.props('Dashboard');
      assert.equal(p.DashboardName, `prism-prism-${region}`);
      assert.doesNotMatch(p.DashboardBody, /\$\{/, 'every placeholder substituted');
      let body;
      assert.doesNotThrow(() => { body = JSON.parse(p.DashboardBody); }, `${mode}: the body is JSON`);
      const seen = new Set();
      for (const w of body.widgets) {
        assert.ok(w.x + w.width <= 24 && w.height > 0, 'on the grid');
        if (w.type !== 'metric') {
          continue;
        }
        const rows = metricRows(w);
        const ids = new Set(rows.map((r) => r.id).filter(Boolean));
        for (const r of rows) {
          if (r.expression) {
            for (const id of r.expression.match(/\b[a-z][A-Za-z0-9_]*\b/g) || []) {
              assert.ok(ids.has(id), `${w.properties.title}: ${r.expression} names ${id}`);
            }
            continue;
          }
          const where = `${mode}: ${w.properties.title}: ${r.namespace} ${r.name}`;
          if (r.namespace === EMF.namespace) {
            assert.equal(w.properties.region, region, where);
            assert.ok(EMF.metrics.includes(r.name), `${where} is not in Prism's EMF lines`);
            assert.ok(EMF.dimensionSets(r.name).includes(Object.keys(r.dimensions).sort().join(',')), `${where}: dimensions ${JSON.stringify(r.dimensions)}`);
            assert.equal(r.dimensions.Service, 'prism', where);
            if ('Route' in r.dimensions) {
              assert.ok(EMF.routes.includes(r.dimensions.Route), where);
            }
            if ('Cache' in r.dimensions) {
              assert.ok(EMF.caches.includes(r.dimensions.Cache), where);
            }
            if ('Code' in r.dimensions) {
              assert.match(r.dimensions.Code, /^[1-5][0-9][0-9]$/, where);
            }
          } else {
            assert.ok(aws[mode].includes(r.namespace), `${where}: namespace`);
          }
          if (r.namespace === 'AWS/CloudFront') {
            assert.equal(w.properties.region, 'us-east-1', `${where}: CloudFront's metrics are in us-east-1`);
            assert.deepEqual(r.dimensions, { DistributionId: 'ref-Distribution', Region: 'Global' }, where);
          }
          if (r.namespace === 'AWS/ECS') {
            assert.deepEqual(r.dimensions, { ClusterName: 'ref-Cluster', ServiceName: 'att-Service.Name' }, where);
          }
          if (r.namespace === 'AWS/Lambda') {
            assert.deepEqual(r.dimensions, { FunctionName: 'ref-HttpFunction' }, where);
          }
          const route = r.dimensions.Route ? `/${r.dimensions.Route}` : '';
          seen.add(`${r.namespace} ${r.name}${route}${r.dimensions.Cache ? '' : ` ${r.stat}`}`);
        }
      }
      const want = [
        ...EMF.routes.map((route) => `${EMF.namespace} Requests/${route} Sum`),
        `${EMF.namespace} Status5xx Average`,
        `${EMF.namespace} Status429 Average`,
        `${EMF.namespace} Duration/transform p50`,
        `${EMF.namespace} Duration/transform p99`,
        ...['QueueTime', 'FetchTime', 'DecodeTime', 'ProcessTime', 'EncodeTime'].map((m) => `${EMF.namespace} ${m} p99`),
        `${EMF.namespace} OutputBytes Sum`,
        'AWS/CloudFront 5xxErrorRate Average',
        'AWS/CloudFront Requests Sum',
        ...(mode === 'ecs'
          ? ['AWS/ECS CPUUtilization Average', 'AWS/ECS MemoryUtilization Average']
          : ['AWS/Lambda Errors Sum', 'AWS/Lambda Throttles Sum', 'AWS/Lambda Duration Maximum']),
      ];
      for (const m of want) {
        assert.ok(seen.has(m), `${mode}: the dashboard lacks ${m} (has ${[...seen].join('; ')})`);
      }
      for (const n of d.referenced) {
        assert.ok(d.active(n), `${mode}: the dashboard names ${n}, which this mode lacks`);
      }
    }
  }
});

test('the alarms and the dashboard name only resources of their mode', () => {
  for (const mode of MODES) {
    for (const region of REGIONS) {
      const d = deployment({ mode, region, params: { AlarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:t' } });
      for (const n of ofType('AWS::CloudWatch::Alarm').filter(d.active)) {
        d.props(n);
      }
      for (const n of d.referenced) {
        assert.ok(d.active(n), `${mode} in ${region}: ${n} is referenced but not created`);
      }
    }
  }
});

test('Prism writes EMF lines into the stack\'s namespace, which the alarms read', () => {
  const ns = { 'Fn::Sub': 'Prism/${AWS::StackName}' };
  const env = Object.fromEntries(props('TaskDefinition').ContainerDefinitions[0].Environment.map((e) => [e.Name, e.Value]));
  assert.equal(env.PRISM_CLOUDWATCH_EMF, 'true', 'EMF is off by default outside Lambda');
  assert.deepEqual(env.PRISM_CLOUDWATCH_NAMESPACE, ns);
  const fn = props('HttpFunction').Environment.Variables;
  assert.deepEqual(fn.PRISM_CLOUDWATCH_NAMESPACE, ns);
  assert.ok(fn.PRISM_CLOUDWATCH_EMF === undefined || fn.PRISM_CLOUDWATCH_EMF === 'true', 'Lambda has EMF on by default');
  for (const n of ALARMS.both) {
    assert.deepEqual(props(n).Namespace, ns, n);
  }
  const d = deployment({ mode: 'ecs' });
  assert.equal(d.ev(ns), EMF.namespace);
});

test('Prometheus: the tasks expose the metrics listener to the scraper group alone, never the ALB', () => {
  const c = props('TaskDefinition').ContainerDefinitions[0];
  assert.deepEqual(c.PortMappings.map((m) => m.ContainerPort), [8080, 9464]);
  assert.ok(!c.Environment.some((e) => e.Name === 'PRISM_METRICS_ADDR'), 'the default, :9464, is the port mapped');
  const i = R.MetricsScrapeIngress;
  assert.equal(i.Condition, 'HasMetricsScraper');
  assert.deepEqual(t.Conditions.HasMetricsScraper, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'MetricsScraperSecurityGroupId' }, ''] }] });
  assert.deepEqual(i.Properties, {
    GroupId: { Ref: 'AppSecurityGroup' }, IpProtocol: 'tcp', FromPort: 9464, ToPort: 9464,
    SourceSecurityGroupId: { Ref: 'MetricsScraperSecurityGroupId' }, Description: 'Prometheus scrapes of PRISM_METRICS_ADDR',
  });
  // The target group sends the image port only; /metrics there is a key.
  assert.equal(props('TargetGroup').Port, 8080);
  assert.ok(!ofType('AWS::ElasticLoadBalancingV2::ListenerRule').some((r) => JSON.stringify(props(r)).includes('/metrics')));
});

test('the template file is where the tools expect it', () => {
  assert.equal(templateFile, fileURLToPath(new URL('./prism.yaml', import.meta.url)));
});
