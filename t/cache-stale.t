#!/usr/bin/perl

# Outages: once an image has been pulled it can be pulled again with the
# upstream gone: by digest, and by tag after the tag's validity has passed
# (served stale, and the response says so), also when the upstream answers
# 5xx or 429, or accepts the connection and never answers.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use RegistryTest;

my $reg = start_registry();
my $img = build_image(layers => [{ a => "stale a\n" }, { b => "stale b\n" }]);
push_image($img, $reg, 'library/app:1');
my $digest = upstream_digest($reg, 'library/app', '1');

# the mirror's upstream is a plain nginx in front of the registry, so that
# its port can be taken over by a failing stand-in
my $fport = free_port();
my $front_http = <<"EOF";
    server {
        listen 127.0.0.1:$fport;
        location / { proxy_pass $reg->{url}; }
    }
EOF
my $front = start_nginx(ports => [$fport], http => $front_http);

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    log_format cache '\$registry_cache_status \$status \$request';
    registry docker.io http://127.0.0.1:$fport;
    registry_tag_valid 1s;
    server {
        listen 127.0.0.1:$port;
        access_log \@DIR\@/cache.log cache;
        registry_default docker.io;
        proxy_connect_timeout 2s;
        proxy_read_timeout 2s;
        include $ROOT/registry_params;
    }
EOF

sub pull {
    my ($ref) = @_;
    return (skopeo_pull($port, "docker.io/library/app$ref"))[0, 1];
}

sub last_manifest_line {
    return (grep { m{ GET /v2/docker\.io/library/app/manifests/1 } }
            file_lines("$ng->{dir}/cache.log"))[-1] // '';
}

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json');
sub tag_get {
    return http_get($port, '/v2/docker.io/library/app/manifests/1',
                    headers => [@accept, @_]);
}

# Pulled once by tag and once by digest, as docker and containerd do in
# one pull (HEAD the tag, then GET by digest); skopeo asks by tag only.
my ($ok, $log) = pull(':1');
ok($ok, 'first pull through the mirror, by tag') or diag $log;
($ok, $log) = pull("\@$digest");
ok($ok, 'and by digest') or diag $log;
is(tag_get()->{status}, 200, 'tag cached for raw requests too');
my $filled = time;      # every fill is done by now

# --- upstream stopped -----------------------------------------------------

stop($front->{pid});
wait_until($filled + 2.1);  # validity 1s, kept by nginx in whole seconds

($ok, $log) = pull(':1');
ok($ok, 'pull by tag with the upstream stopped, validity passed')
    or diag $log;
ok(eventually(sub { last_manifest_line() =~ /^STALE 200 / }),
   'the log says STALE');
($ok, $log) = pull("\@$digest");
ok($ok, 'pull by digest with the upstream stopped') or diag $log;

my $r = tag_get();
is($r->{status}, 200, 'raw GET by tag: 200');
is($r->{headers}{'x-registry-cache'}[0], 'STALE', 'header says STALE');
is($r->{headers}{'docker-content-digest'}[0], $digest, 'the cached digest');

# --- upstream answers 5xx or 429 ------------------------------------------

my $failing = start_nginx(ports => [$fport], http => <<"EOF");
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/failing.log;
        location / {
            # the test picks the failure: the mirror passes no client
            # header on, so a file says which
            if (-f \@DIR\@/fail-500) { return 500; }
            if (-f \@DIR\@/fail-429) {
                add_header Retry-After 42 always;
                return 429;
            }
            return 503;
        }
    }
EOF

sub fail_with {
    my ($code) = @_;
    unlink glob "$failing->{dir}/fail-*";
    spew("$failing->{dir}/fail-$code", '') if $code != 503;
}

# A failed check is not repeated for a validity period (1 s here): each
# code is tried at the start of a second, twice within it.
sub next_second { wait_until(int(time) + 1.05) }

for my $code (500, 503, 429) {
    fail_with($code);
    next_second();
    $r = tag_get();
    is($r->{status}, 200, "upstream $code: 200 from the cache");
    is($r->{headers}{'x-registry-cache'}[0], 'STALE', "upstream $code: STALE");
    $r = tag_get();
    is($r->{headers}{'x-registry-cache'}[0], 'STALE', '... and again');
}
is(at_least(3, sub { scalar(() = file_lines("$failing->{dir}/failing.log")) }),
   3, 'the failing upstream was asked once for each code');

# rate-limited with nothing cached: the OCI error, Retry-After kept
$r = http_get($port, '/v2/docker.io/library/app/manifests/never-cached',
              headers => \@accept);
is($r->{status}, 429, 'upstream 429, nothing cached: 429');
is(eval { $r->{json}{errors}[0]{code} }, 'TOOMANYREQUESTS',
   '... TOOMANYREQUESTS');
is(($r->{headers}{'retry-after'} // [''])->[0], '42', '... Retry-After kept');
fail_with(503);
($ok, $log) = pull(':1');
ok($ok, 'pull by tag while the upstream answers 503') or diag $log;
stop($failing->{pid});

# --- upstream accepts and never answers -----------------------------------

my $hang = start_silent($fport);
ok($hang, 'silent upstream listening');

next_second();
my $t1 = time;
$r = tag_get();
is($r->{status}, 200, 'upstream times out: 200 from the cache');
is($r->{headers}{'x-registry-cache'}[0], 'STALE', 'upstream times out: STALE');
diag(sprintf 'answered after %.1f s (proxy_read_timeout 2s)', time - $t1);

# nothing cached and nobody answering: an OCI error, not nginx's HTML
$r = http_get($port, '/v2/docker.io/library/app/manifests/uncached',
              headers => [@accept]);
is($r->{status}, 504, 'silent upstream, nothing cached: 504');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
stop($hang);
$r = http_get($port, '/v2/docker.io/library/app/manifests/uncached',
              headers => [@accept]);
is($r->{status}, 502, 'upstream gone, nothing cached: 502');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
like($r->{headers}{'content-type'}[0], qr{^application/json}, '... JSON');

# --- and nothing was lost: the upstream back, the tag revalidates ---------

$front = start_nginx(ports => [$fport], http => $front_http);
next_second();
$r = tag_get();
is($r->{headers}{'x-registry-cache'}[0], 'REVALIDATED',
   'upstream back: revalidated');
is($r->{headers}{'docker-content-digest'}[0], $digest, 'same digest');

done_testing();
