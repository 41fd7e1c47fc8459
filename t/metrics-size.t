#!/usr/bin/perl

# The metrics and health answers hold whatever the configuration lists
# (issue 13 review): 150 caches, one with a quote, a backslash and a
# newline in its zone name, and 2 registries with long names (answers
# sized by registries alone came out cut); /metrics passes promtool and
# /health is whole JSON, the odd name escaped in both.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use RegistryTest;

my $reg = start_registry();
my $port = free_port();

my $caches = join '', map {
    "    proxy_cache_path \@DIR\@/c$_ keys_zone=cache-$_-" . ('x' x 40)
    . ":256k;\n" } 1 .. 150;
$caches .= "    proxy_cache_path \@DIR\@/odd \"keys_zone=we\\\"ird\\\\na\nme:256k\";\n";
my $registries = join '', map {
    "    registry r$_." . ('long-name-' x 20) . "test $reg->{url};\n" } 1 .. 2;

my $ng = start_nginx(ports => [$port], http => <<"EOF2");
$caches
$registries
    server {
        listen 127.0.0.1:$port;
        location = /metrics { registry_metrics; }
        location = /health { registry_health; }
    }
EOF2

my $r = http_get($port, '/metrics');
is($r->{status}, 200, '150 caches, 2 long registry names: /metrics 200');
like($r->{body}, qr/^nginx_registry_zone_used_bytes\{zone="ngx_http_registry"\} \d+$/m,
     '... whole, to its last line');
like($r->{body}, qr/\{cache="we\\"ird\\\\na\\nme"\}/,
     '... the odd zone name escaped');
my $file = test_dir() . '/metrics.txt';
spew($file, $r->{body});
my $out = run_out('sh', '-c', "promtool check metrics < $file");
is($?, 0, '... promtool check metrics passes') or diag $out;

$r = http_get($port, '/health');
is($r->{status}, 200, '/health 200');
my $h = eval { decode_json($r->{body}) };
ok($h, '... whole JSON') or diag substr($r->{body}, -200);
is(scalar keys %{ $h->{caches} // {} }, 152, '... every cache in it');
ok(exists $h->{caches}{"we\"ird\\na\nme"}, '... the odd name as it is');
is(scalar keys %{ $h->{registries} // {} }, 2, '... every registry');

done_testing();
