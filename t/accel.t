#!/usr/bin/perl

# An upstream is not nginx's own backend: its X-Accel-Buffering,
# X-Accel-Redirect, X-Accel-Limit-Rate and X-Accel-Charset are not obeyed,
# in location / (the registry), at a redirect target and at a token
# realm.  A digest fill is always hashed: one that cannot be (proxied
# unbuffered, or ended only by the upstream closing) is refused with an
# OCI 502 and never reaches the client or the cache unchecked.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use RegistryTest;

my $h = start_hostile('accel');
ok($h->{up}, 'hostile upstream up');
my ($hd, $hp) = @$h{qw(dir port)};

# one blob per case: digest entries are shared by all registries
sub blob {
    my ($name) = @_;
    my $data = join '', map { Digest::SHA::sha256("$name $_") } 1 .. 8192;
    $data .= join '', map { chr } 0x80 .. 0xff;    # recodable bytes
    my $digest = 'sha256:' . sha256_hex($data);
    spew("$hd/blobs/" . substr($digest, 7), $data);
    return ($digest, $data);
}

sub mode { hostile_mode($h, $_[0], $_[1]) }
sub upstream_requests { hostile_asked($h, $_[0]) }

my @modes = qw(plain buffering internal loop rate charset front1 target1
               front2 target2 auth close);
my $registries = join '', map {
    "    registry $_.test http://127.0.0.1:$hp/$_;\n"
} @modes;
$registries .= "    registry unbuffered.test http://127.0.0.1:$hp/plain;\n";

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
$registries
    include /etc/nginx/koi-utf;
    log_format accel '\$request \$status limit_rate=\$limit_rate';

    server {
        listen 127.0.0.1:$port;
        access_log \@DIR\@/accel.log accel;
        registry_redirect_http on;
        registry_redirect_allow 127.0.0.0/8;
$MIRROR_PARAMS
        location = /_test/internal {
            internal;
            registry_mirror off;
            return 200 "internal location reached";
        }

        location = /_test/token {
            internal;
            registry_mirror off;
            default_type application/json;
            return 200 '{"token":"internal"}';
        }

        # an operator's location that proxies unbuffered
        location /v2/unbuffered.test/ {
            proxy_buffering off;
            proxy_pass \$registry_upstream\$registry_uri;
        }
    }
EOF

sub get { return http_get($port, @_) }
sub mismatches { return mismatches_at($port) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub cached { return cached_digest($ng, $_[0]) }

is(mismatches(), '0', 'counter starts at 0');

# --- X-Accel-Buffering: no ---------------------------------------------------

my ($d, $data) = blob('buffering');
mode('buffering', { corrupt => 1, headers => ['X-Accel-Buffering: no'] });
my $r = get("/v2/buffering.test/x/blobs/$d");
cmp_ok(length $r->{body}, '<', length $data,
       'X-Accel-Buffering: no, corrupt blob: not delivered whole')
    or diag "status $r->{status}";
like(slurp($ng->{error_log}), qr/digest mismatch from "buffering\.test"/,
     '... the mismatch is logged: the fill was hashed');
is(mismatches(), '1', '... and counted');
ok(!cached($d), '... and not cached');

mode('buffering', { headers => ['X-Accel-Buffering: no'] });
$r = get("/v2/buffering.test/x/blobs/$d");
is($r->{status}, 200, 'X-Accel-Buffering: no, good blob: 200');
ok($r->{body} eq $data, '... whole and correct');
is(status(get("/v2/buffering.test/y/blobs/$d")), 'HIT',
   '... and cached (buffered, hashed)');

# --- X-Accel-Redirect ----------------------------------------------------------

($d, $data) = blob('internal');
mode('internal', { headers => ['X-Accel-Redirect: /_test/internal'] });
$r = get("/v2/internal.test/x/blobs/$d");
is($r->{status}, 200, 'X-Accel-Redirect to an internal location: 200');
ok($r->{body} eq $data, '... with the blob, not the internal location')
    or diag substr($r->{body}, 0, 80);

($d, $data) = blob('loop');
mode('loop', { headers => ["X-Accel-Redirect: /v2/loop.test/x/blobs/$d"] });
$r = get("/v2/loop.test/x/blobs/$d");
ok($r->{status} == 200 && $r->{body} eq $data,
   'X-Accel-Redirect back to the same URL: the blob')
    or diag "status $r->{status}";
is(at_least(1, sub { upstream_requests(qr{^GET /v2/loop/x/blobs/}) }), 1,
   '... after one upstream request, not a loop');

# --- X-Accel-Limit-Rate, X-Accel-Charset --------------------------------------

($d, $data) = blob('rate');
mode('rate', { headers => ['X-Accel-Limit-Rate: 1000000'] });
$r = get("/v2/rate.test/x/blobs/$d");
ok($r->{body} eq $data, 'X-Accel-Limit-Rate: the blob');
like(eventually(sub { join "\n", grep { /rate\.test/ }
                                  file_lines("$ng->{dir}/accel.log") }),
     qr/limit_rate=0$/, '... sent without the rate limit');

($d, $data) = blob('charset');
mode('charset', { type => 'application/octet-stream; charset=koi8-r',
                  headers => ['X-Accel-Charset: utf-8'] });
$r = get("/v2/charset.test/x/blobs/$d");
ok($r->{body} eq $data, 'X-Accel-Charset: the blob, not recoded')
    or diag length($r->{body}) . ' bytes, ' . length($data) . ' expected';
unlike($r->{headers}{'content-type'}[0] // '', qr/charset/,
       '... no charset in its Content-Type');

# --- at a redirect target --------------------------------------------------------

($d, $data) = blob('target1');
mode('front1', { redirect => "http://127.0.0.1:$hp/v2/target1" });
mode('target1', { headers => ['X-Accel-Redirect: /_test/internal'] });
$r = get("/v2/front1.test/x/blobs/$d");
ok($r->{status} == 200 && $r->{body} eq $data,
   'redirect target sending X-Accel-Redirect: the blob')
    or diag "status $r->{status}: " . substr($r->{body}, 0, 80);
is(at_least(1, sub { upstream_requests(qr{^GET /v2/target1/x/blobs/}) }), 1,
   '... fetched once from the target');

($d, $data) = blob('target2');
mode('front2', { redirect => "http://127.0.0.1:$hp/v2/target2" });
mode('target2', { corrupt => 1, headers => ['X-Accel-Buffering: no'] });
$r = get("/v2/front2.test/x/blobs/$d");
cmp_ok(length $r->{body}, '<', length $data,
       'redirect target sending X-Accel-Buffering: no and a corrupt blob: '
       . 'not delivered whole');
is(mismatches(), '2', '... counted as a mismatch');

# --- at a token realm ---------------------------------------------------------------

($d, $data) = blob('auth');
mode('auth', { auth => 'good', token_headers => [
    'X-Accel-Redirect: /_test/token', 'X-Accel-Buffering: no'] });
$r = get("/v2/auth.test/x/blobs/$d");
ok($r->{status} == 200 && $r->{body} eq $data,
   'token realm sending X-Accel-Redirect: its own token used, blob served')
    or diag "status $r->{status}: " . substr($r->{body}, 0, 200);
is(upstream_requests(qr{Bearer internal}), 0,
   '... the internal location\'s token never reached the upstream');

# --- a fill that cannot be hashed is refused -----------------------------------------

($d, $data) = blob('unbuffered');
mode('plain', { headers => ['X-Hostile: 1'] });
$r = get("/v2/unbuffered.test/x/blobs/$d");
is($r->{status}, 502, 'proxied unbuffered (operator\'s location): 502');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
ok(!$r->{headers}{'x-hostile'} && !$r->{headers}{'docker-content-digest'},
   '... without the upstream\'s headers');
ok(!cached($d), '... nothing cached');
$r = get("/v2/plain.test/x/blobs/$d");
ok($r->{status} == 200 && $r->{body} eq $data,
   'the same blob through location /: filled at once (no lock left)');
is(status($r), 'MISS', '... a fill');

($d, $data) = blob('close');
mode('close', { framing => 'close' });
$r = get("/v2/close.test/x/blobs/$d");
is($r->{status}, 502, 'no Content-Length, not chunked: 502');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
ok(!cached($d), '... nothing cached');
like(slurp($ng->{error_log}), qr/registry: .*close\.test.*cannot be verified/,
     '... and the error log says why');

unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]/,
       'no worker crashed');

done_testing();
