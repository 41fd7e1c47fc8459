#!/usr/bin/perl

# Tags against a hostile upstream and hostile clients (from the reviews of
# the tag map): a check that fails in the mirror's own steps (its token
# service, a redirect it will not follow, a redirect loop) or that stalls
# after a token fetch serves the last known digest; an immutable tag keeps
# its pin when the upstream names no digest or answers oddly, and when
# another client floods the zone with tags; an upstream's own status 599
# is a 502, asked once; one client's Accept lists do not push a digest out
# of a tag's history; the history location refused by address answers an
# OCI error.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(time);
use RegistryTest;

my $h = start_hostile('tags');
ok($h->{up}, 'hostile upstream up');
my ($hd, $hp) = @$h{qw(dir port)};

# a manifest of its own for each name, served by digest and by tag
sub manifest {
    my ($name) = @_;
    my $cfg = sha256_hex("config $name");
    my $body = encode_json({
        schemaVersion => 2,
        mediaType => 'application/vnd.oci.image.manifest.v1+json',
        config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                    digest => "sha256:$cfg", size => 2 },
        layers => [],
        annotations => { name => $name } });
    my $d = 'sha256:' . sha256_hex($body);
    spew("$hd/manifests/$d", $body);
    return ($d, $body);
}
sub tag { my ($t, $body) = @_; spew("$hd/manifests/$t", $body) }
sub mode { hostile_mode($h, $_[0], $_[1]) }
sub upstream { hostile_asked($h, $_[0]) }

my $journal = test_dir() . '/tag-history';
my $port = free_port();
my $zport = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry auth.test http://127.0.0.1:$hp/auth;
    registry pin.test  http://127.0.0.1:$hp/pin;
    registry own.test  http://127.0.0.1:$hp/own;
    registry tok.test  http://127.0.0.1:$hp/tok;
    registry_tag_valid 1s;
    registry_tag_check_timeout 1s;
    registry_immutable_tags ^v[0-9]+\\.[0-9]+\$;
    registry_tag_history $journal entries=4;
    server {
        listen 127.0.0.1:$port;
        registry_redirect_http on;
        registry_redirect_allow 127.0.0.0/8;
        proxy_read_timeout 30s;
        location = /_registry/history {
            registry_tag_history_api;
            allow 127.0.0.1;
            deny all;
        }
        location = /_registry/history-denied {
            registry_tag_history_api;
            deny all;
        }
        include $ROOT/registry_params;
    }
EOF

my $acc = 'Accept: application/vnd.oci.image.manifest.v1+json';
sub get { my ($p, %o) = @_; return http_get($port, $p, headers => [$acc], %o) }
sub dig { return ($_[0]{headers}{'docker-content-digest'} // [''])->[0] }
sub st { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub next_second { wait_until(int(time) + 1.05) }    # validity 1 s

# --- a check its own steps cannot finish: the last known digest -------------

my ($da, $ba) = manifest('auth one');
for my $case (
    ['its token service answers 503', { auth => 'z1', token_status => 503 }],
    ['its token service answers 401', { auth => 'z2', token_status => 401 }],
    ['a redirect without Location', { auth => 'z3', head => { status => 302 } }],
    ['a redirect to a refused address',
     { auth => 'z4', head => { redirect => 'http://169.254.169.254/v2/x' } }],
    ['a redirect loop',
     { auth => 'z5', head => { redirect => "http://127.0.0.1:$hp/v2/auth" } }],
) {
    my ($what, $spec) = @$case;
    my $t = 'a' . int(rand 1e6);
    tag($t, $ba);
    mode('auth', { digest => 'auto', auth => 'ok' });
    my $r = get("/v2/auth.test/x/manifests/$t");
    is(dig($r), $da, "$what: the tag pulled before");
    next_second();
    mode('auth', { digest => 'auto', %$spec });
    $r = get("/v2/auth.test/x/manifests/$t");
    is($r->{status}, 200, "$what: 200");
    is(st($r), 'STALE', '... STALE');
    is(dig($r), $da, '... the last known digest');
}

# a check that gets its token late, then a HEAD that hangs: the check is
# given up at its next step (the client would wait 25 s otherwise)
my ($dt, $bt) = manifest('tok one');
tag('t1', $bt);
mode('tok', { digest => 'auto', auth => 'tk1' });
is(dig(get('/v2/tok.test/x/manifests/t1')), $dt, 'the tag pulled before');
next_second();
mode('tok', { digest => 'auto', auth => 'tk2', token_delay => 1.5,
              head => { delay => 25 } });
my $r = get('/v2/tok.test/x/manifests/t1', timeout => 20);
is($r->{status}, 200, 'a late token, then a silent HEAD: 200');
is(st($r), 'STALE', '... STALE');
is(dig($r), $dt, '... the last known digest');
like(slurp($ng->{error_log}),
     qr/tag check of "tok\.test" repository "tok\/x" tag "t1" timed out/,
     '... the check given up by registry_tag_check_timeout');

# a check held up by the operator's limit_req past its timeout, then
# answered 503: served stale all the same
my $lport = free_port();
my $lng = start_nginx(ports => [$lport], http => <<"EOF");
    registry tok.test http://127.0.0.1:$hp/tok;
    registry_tag_valid 1s;
    registry_tag_check_timeout 1s;
    limit_req_zone \$binary_remote_addr zone=one:1m rate=33r/m;
    server {
        listen 127.0.0.1:$lport;
        limit_req zone=one burst=5;
        include $ROOT/registry_params;
    }
EOF
mode('tok', { digest => 'auto' });
my $lt = time;
is(dig(http_get($lport, '/v2/tok.test/x/manifests/t1', headers => [$acc])),
   $dt, 'behind limit_req: the tag pulled before');
wait_until($lt + 2.5);      # past validity, and the limit's slot free again
mode('tok', { digest => 'auto', head => { status => 503 } });
http_get($lport, '/v2/');   # takes the slot: the tag's request waits 1.8 s
$r = http_get($lport, '/v2/tok.test/x/manifests/t1', headers => [$acc],
              timeout => 20);
is($r->{status}, 200, 'a check delayed past its timeout, then a 503: 200');
is(st($r), 'STALE', '... STALE');
is(dig($r), $dt, '... the last known digest');

# --- an immutable tag keeps its pin ----------------------------------------

my ($d1, $b1) = manifest('pin one');
my ($d2, $b2) = manifest('pin two');
my $v = 0;
for my $case (['names d2', {}],
              ['names no digest', { head => { digest => '' } }],
              ['answers 410', { head => { status => 410 } }],
              ['answers 204', { head => { status => 204 } }]) {
    my ($what, $spec) = @$case;
    my $t = 'v1.' . $v++;
    tag($t, $b1);
    mode('pin', { digest => 'auto' });
    is(dig(get("/v2/pin.test/x/manifests/$t")), $d1, "$t pinned at d1");
    tag($t, $b2);
    mode('pin', { digest => 'auto', %$spec });
    next_second();
    $r = get("/v2/pin.test/x/manifests/$t");
    is($r->{status}, 200, "the check $what: 200");
    is(dig($r), $d1, '... still d1');
    is(sha256_hex($r->{body}), substr($d1, 7), '... its bytes');
    $r = get("/v2/pin.test/x/manifests/$t", method => 'HEAD');
    is(dig($r), $d1, '... and for a HEAD');
}

# another client floods the tags' share of a small zone with tags
my $zng = start_nginx(ports => [$zport], http => <<"EOF");
    registry pin.test http://127.0.0.1:$hp/pin;
    registry_zone 64k;
    registry_tag_valid 1s;
    registry_immutable_tags ^v[0-9]+\\.[0-9]+\$;
    server {
        listen 127.0.0.1:$zport;
        include $ROOT/registry_params;
    }
EOF
mode('pin', { digest => 'auto' });
tag('v2.0', $b1);
is(dig(http_get($zport, '/v2/pin.test/x/manifests/v2.0', headers => [$acc])),
   $d1, 'a 64k zone: v2.0 pinned at d1');
tag('v2.0', $b2);
tag("f$_", $b2) for 1 .. 150;
http_get($zport, "/v2/pin.test/x/manifests/f$_", headers => [$acc])
    for 1 .. 150;
http_get($zport, "/v2/pin.test/x/manifests/none$_", headers => [$acc])
    for 1 .. 150;
next_second();
$r = http_get($zport, '/v2/pin.test/x/manifests/v2.0', headers => [$acc]);
is(dig($r), $d1, 'after another client asked for 300 other tags: still d1');

# the share for pins full: a tag that could not be pinned follows its
# upstream, and says so once a check, not once a request
tag("v3.$_", $b1) for 0 .. 40;
http_get($zport, "/v2/pin.test/x/manifests/v3.$_", headers => [$acc])
    for 0 .. 40;
my ($unpinned) = slurp($zng->{error_log})
                 =~ /immutable tag "(v3\.\d+)" .* not pinned/;
ok($unpinned, 'a 64k zone: the share for pins is full');
$unpinned //= 'v3.40';
sub not_pinned {
    return scalar(() = slurp($zng->{error_log})
                       =~ /immutable tag "\Q$unpinned\E" .* not pinned/g);
}
my $warned = not_pinned();
next_second();
http_get($zport, "/v2/pin.test/x/manifests/$unpinned", headers => [$acc])
    for 1 .. 10;
cmp_ok(not_pinned() - $warned, '<=', 1,
       "10 pulls of $unpinned within its validity: one warning at most");

# --- an upstream's own 599: a 502, asked once --------------------------------

my ($do, $bo) = manifest('own one');
tag('o1', $bo);
mode('own', { digest => 'auto', status => 599, head => { status => 200 } });
my $n = upstream(qr{^GET /v2/own/});
$r = get('/v2/own.test/x/manifests/o1');
is($r->{status}, 502, '599 to the GET by digest: 502');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
is(upstream(qr{^GET /v2/own/}) - $n, 1, '... one GET upstream');
tag('o2', $bo);
mode('own', { digest => 'auto', status => 599,
              head => { status => 200, digest => '' } });
$n = upstream(qr{^GET /v2/own/});
$r = get('/v2/own.test/x/manifests/o2');
is($r->{status}, 502, '599 to the GET by tag: 502');
is(upstream(qr{^GET /v2/own/}) - $n, 1, '... one GET upstream');

# --- a tag's history keeps its digests, whatever Accept lists ask --------

mode('pin', { digest => 'auto' });
tag('h', $b1);
is(dig(get('/v2/pin.test/x/manifests/h')), $d1, 'h is d1');
tag('h', $b2);
next_second();
my @types = ('application/vnd.oci.image.manifest.v1+json',
             'application/vnd.oci.image.index.v1+json',
             'application/vnd.docker.distribution.manifest.v2+json',
             'application/vnd.docker.distribution.manifest.list.v2+json');
for my $i (1 .. 15) {
    my @a = map { "Accept: $types[$_]" } grep { $i & (1 << $_) } 0 .. 3;
    http_get($port, '/v2/pin.test/x/manifests/h',
             headers => [@a, 'Accept: application/vnd.oci.image.manifest.v1+json']);
}
my $hist = http_get($port, '/_registry/history?registry=pin.test'
                           . '&repository=pin/x&tag=h');
my $entries = ($hist->{json} // {})->{history} // [];
my %digests = map { $_->{digest} => 1 } @$entries;
ok($digests{$d1}, 'after 15 Accept lists for d2, the history (4 entries) '
   . 'still has d1') or diag $hist->{body};
ok($digests{$d2}, '... and d2');

$r = http_get($port, '/_registry/history-denied?registry=pin.test'
                     . '&repository=pin/x&tag=h');
is($r->{status}, 403, 'the history location, refused by address: 403');
is(eval { $r->{json}{errors}[0]{code} }, 'DENIED', '... an OCI error body');

unlike(slurp($ng->{error_log}) . slurp($zng->{error_log})
       . slurp($lng->{error_log}),
       qr/\[(?:alert|crit|emerg)\]|exited on signal/,
       'no worker crashed, nothing critical logged');

done_testing();
