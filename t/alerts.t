#!/usr/bin/perl

# The monitoring examples: conf-examples/registry-alerts.yml passes
# "promtool check rules" and conf-examples/prometheus.yml "promtool check
# config" (with the rule file it loads); each alert fires on the series
# that should fire it and stays quiet on healthy ones ("promtool test
# rules", series made up at a 1-minute interval); the rules name only the
# module's metric families (README.md, Monitoring).  t/metrics.t loads the
# same rules into a Prometheus scraping a real mirror.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use RegistryTest;

my $rules = "$ROOT/conf-examples/registry-alerts.yml";
my $config = "$ROOT/conf-examples/prometheus.yml";

my $out = run_out('promtool', 'check', 'rules', $rules);
is($?, 0, 'promtool check rules registry-alerts.yml') or diag $out;
like($out, qr/SUCCESS: 3 rules found/, '... three rules') or diag $out;

$out = run_out('promtool', 'check', 'config', $config);
is($?, 0, 'promtool check config prometheus.yml') or diag $out;
like($out, qr/SUCCESS: 1 rule files found/, '... loads the rule file')
    or diag $out;

# promtool does find errors: the same rules with a typo in one expression
my $bad = slurp($rules);
$bad =~ s/increase\(/increase((/ or die 'no increase( in the rules';
spew(test_dir() . '/bad-alerts.yml', $bad);
$out = run_out('promtool', 'check', 'rules', test_dir() . '/bad-alerts.yml');
isnt($?, 0, 'promtool check rules fails on a broken expression');

# the metric families the rules use are the module's
my %families = map { $_ => 1 } qw(
    nginx_registry_requests_total nginx_registry_sent_bytes_total
    nginx_registry_upstream_received_bytes_total
    nginx_registry_upstream_responses_total nginx_registry_fills_total
    nginx_registry_token_fetches_total nginx_registry_redirects_total
    nginx_registry_auth_decisions_total nginx_registry_cache_size_bytes
    nginx_registry_cache_max_size_bytes nginx_registry_zone_used_bytes
    nginx_registry_zone_size_bytes
    nginx_registry_upstream_last_success_timestamp_seconds
    nginx_registry_upstream_last_failure_timestamp_seconds);
my @used = slurp($rules) =~ /\b(nginx_registry_\w+)/g;
ok(scalar @used, 'the rules use the module\'s metrics');
is_deeply([grep { !$families{$_} } @used], [],
          '... and no name that is not one of its families');

# Each alert on made-up series: registry "hub" fails 20% upstream (5xx
# and 429), "quay" 1% (quiet); cache "registry" at 95% of max_size,
# "small" at 50% (quiet); "hub" has one digest mismatch at minute 3,
# "quay" none (quiet), and 15 minutes later the alert is gone.
my $test = test_dir() . '/alerts-test.yml';
spew($test, <<"YAML");
rule_files:
  - $rules
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'nginx_registry_upstream_responses_total{instance="m:5000",registry="hub",status="2xx"}'
        values: '0+80x40'
      - series: 'nginx_registry_upstream_responses_total{instance="m:5000",registry="hub",status="5xx"}'
        values: '0+15x40'
      - series: 'nginx_registry_upstream_responses_total{instance="m:5000",registry="hub",status="429"}'
        values: '0+5x40'
      - series: 'nginx_registry_upstream_responses_total{instance="m:5000",registry="hub",status="error"}'
        values: '0x40'
      - series: 'nginx_registry_upstream_responses_total{instance="m:5000",registry="quay",status="2xx"}'
        values: '0+99x40'
      - series: 'nginx_registry_upstream_responses_total{instance="m:5000",registry="quay",status="error"}'
        values: '0+1x40'
      - series: 'nginx_registry_cache_size_bytes{instance="m:5000",cache="registry"}'
        values: '950x40'
      - series: 'nginx_registry_cache_max_size_bytes{instance="m:5000",cache="registry"}'
        values: '1000x40'
      - series: 'nginx_registry_cache_size_bytes{instance="m:5000",cache="small"}'
        values: '500x40'
      - series: 'nginx_registry_cache_max_size_bytes{instance="m:5000",cache="small"}'
        values: '1000x40'
      - series: 'nginx_registry_fills_total{instance="m:5000",registry="hub",result="mismatch"}'
        values: '0 0 0 1x40'
      - series: 'nginx_registry_fills_total{instance="m:5000",registry="quay",result="mismatch"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 8m
        alertname: RegistryPullFailures
        exp_alerts: []
      - eval_time: 20m
        alertname: RegistryPullFailures
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: m:5000
              registry: hub
            exp_annotations:
              summary: "hub upstream failing on m:5000"
              description: "20% of the upstream answers of registry hub were 5xx, 429 or none in the last 5 minutes."
      - eval_time: 20m
        alertname: RegistryCacheNearlyFull
        exp_alerts: []
      - eval_time: 35m
        alertname: RegistryCacheNearlyFull
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: m:5000
              cache: registry
            exp_annotations:
              summary: "cache registry on m:5000 nearly full"
              description: "Cache registry holds 95% of its max_size."
      - eval_time: 2m
        alertname: RegistryDigestMismatch
        exp_alerts: []
      - eval_time: 4m
        alertname: RegistryDigestMismatch
        exp_alerts:
          - exp_labels:
              severity: critical
              instance: m:5000
              registry: hub
              result: mismatch
            exp_annotations:
              summary: "hub answered content not matching its digest"
              description: "Registry hub answered content that did not match its digest in the last 15 minutes (seen by m:5000); nothing of it was cached."
      - eval_time: 20m
        alertname: RegistryDigestMismatch
        exp_alerts: []
YAML
$out = run_out('promtool', 'test', 'rules', $test);
is($?, 0, 'promtool test rules: each alert fires when it should, only then')
    or diag $out;
like($out, qr/SUCCESS/, '... SUCCESS') or diag $out;

done_testing;
