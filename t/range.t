#!/usr/bin/perl

# Range and verification: never a 206 before the digest is known.  A cold
# blob asked for with Range gets 200 and the whole body, checked like any
# fill (RFC 9110 lets a server ignore Range); from an upstream that sends
# a corrupt first byte the client never gets a complete answer.  Once the
# entry is verified and cached, Range is answered with 206.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use RegistryTest;

my $h = start_hostile('range');
ok($h->{up}, 'hostile upstream up');
my ($hd, $hp) = @$h{qw(dir port)};
# as distribution does, both say they serve ranges
hostile_mode($h, 'bad', { corrupt => 1,
                          headers => ['Accept-Ranges: bytes'] });
hostile_mode($h, 'good', { headers => ['Accept-Ranges: bytes'] });

my $data = join '', map { Digest::SHA::sha256("range $_") } 1 .. 16384;
my $digest = 'sha256:' . sha256_hex($data);
spew("$hd/blobs/" . substr($digest, 7), $data);

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry bad.test  http://127.0.0.1:$hp/bad;
    registry good.test http://127.0.0.1:$hp/good;

    server {
        listen 127.0.0.1:$port;
$MIRROR_PARAMS
    }
EOF

sub get { return http_get($port, @_) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
my @range = ('Range: bytes=0-9');

my $r = get("/v2/bad.test/x/blobs/$digest", headers => \@range);
isnt($r->{status}, 206, 'cold Range, corrupt first byte: not a 206');
ok(!($r->{headers}{'content-length'}
     && $r->{headers}{'content-length'}[0] == length $r->{body}),
   '... and no complete answer')
    or diag "status $r->{status}, " . length($r->{body}) . ' bytes';
is(get('/_test/mismatches')->{body}, '1', '... the mismatch counted');

$r = get("/v2/good.test/x/blobs/$digest", headers => \@range);
is($r->{status}, 200, 'cold Range, good blob: 200');
ok($r->{body} eq $data, '... the whole blob');
is(status($r), 'MISS', '... a fill');
ok(!$r->{headers}{'accept-ranges'}, '... no Accept-Ranges on the fill');

$r = get("/v2/good.test/y/blobs/$digest", headers => \@range);
is($r->{status}, 206, 'cached: Range answered with 206');
is($r->{body}, substr($data, 0, 10), '... the first 10 bytes');
is($r->{headers}{'content-range'}[0], 'bytes 0-9/' . length $data,
   '... Content-Range');
is(status($r), 'HIT', '... from the cache');

$r = get("/v2/bad.test/z/blobs/$digest", headers => ['Range: bytes=10-']);
is($r->{status}, 206, 'cached through the bad registry: 206 too');
is($r->{body}, substr($data, 10), '... of the verified bytes');

unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]/,
       'no worker crashed');

done_testing();
