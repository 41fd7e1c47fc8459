#!/usr/bin/perl

# An upstream's status is not the upstream's to choose.  nginx 1.22 takes
# a 1xx for the final answer: without care the client gets the 1xx, the
# upstream's further bytes reach it raw, and on its kept-alive connection
# an attacker's "HTTP/1.1 200" is read as the answer to its NEXT request
# (a 101 to a client that sent Upgrade is even tunnelled).  A 206, 203,
# 204, 299, an unsolicited 304 or another 3xx nobody intercepts would go
# out unverified (only a 200 is hashed).  The mirror never asks for any of
# those: each is refused with an OCI 502, and the next request on the
# same connection gets its own answer.  An answer whose checks fail before
# any of its body is sent gets a 502 too, not a silent connection:
# Content-Length 0 for a digest whose body is not empty, or Content-Length
# given twice.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time);
use RegistryTest;

my $reg = start_registry();
my $file = test_dir() . '/good-blob';
spew($file, join '', map { Digest::SHA::sha256("good $_") } 1 .. 2048);
my $good = push_blob($reg, $file);
my $good_data = slurp($file);

my $h = start_hostile('status');
ok($h->{up}, 'hostile upstream up');
my ($hd, $hp) = @$h{qw(dir port)};

sub mode { hostile_mode($h, $_[0], $_[1]) }

sub blob {
    my ($name) = @_;
    my $data = join '', map { Digest::SHA::sha256("$name $_") } 1 .. 1024;
    my $digest = 'sha256:' . sha256_hex($data);
    spew("$hd/blobs/" . substr($digest, 7), $data);
    return ($digest, $data);
}

my $evil = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
         . "Content-Length: 4\r\n\r\nevil";
mode('up101', { raw => "HTTP/1.1 101 Switching Protocols\r\n"
                       . "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                       . "$evil$evil" });
mode('up100', { raw => "HTTP/1.1 100 Continue\r\n\r\n$evil$evil" });
mode('r401', { raw => "HTTP/1.1 401 U\r\n"
                      . "WWW-Authenticate: Basic realm=\"upstream\"\r\n"
                      . "WWW-Authenticate: Bearer realm=\"http://evil.example/"
                      . "steal\",service=\"s\"\r\nContent-Length: 0\r\n\r\n" });
mode('r401e', { raw => "HTTP/1.1 401 U\r\n"
                       . "WWW-Authenticate: Bearer error=\"x\"\r\n"
                       . "WWW-Authenticate: Bearer realm=\"http://evil.example/"
                       . "steal\",service=\"s\"\r\nContent-Length: 0\r\n\r\n" });
mode('nostatus', { raw => "junk without a status line\r\n\r\nevil" });
mode('s999', { raw => "HTTP/1.1 999 X\r\nContent-Length: 4\r\n\r\nevil" });
mode('s600', { raw => "HTTP/1.0 600 X\r\nContent-Length: 4\r\n\r\nevil" });

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry good.test  $reg->{url};
    registry up101.test http://127.0.0.1:$hp/up101;
    registry up100.test http://127.0.0.1:$hp/up100;
    registry nostatus.test http://127.0.0.1:$hp/nostatus;
    registry r401.test  http://127.0.0.1:$hp/r401;
    registry r401e.test http://127.0.0.1:$hp/r401e;
    registry s999.test  http://127.0.0.1:$hp/s999;
    registry s600.test  http://127.0.0.1:$hp/s600;
    registry s.test     http://127.0.0.1:$hp/s;

    server {
        listen 127.0.0.1:$port;
$MIRROR_PARAMS
    }
EOF

sub get { return http_get($port, @_) }
sub mismatches { return mismatches_at($port) }
sub code { return eval { $_[0]{json}{errors}[0]{code} } // '' }
sub cached { return cached_digest($ng, $_[0]) }

# One answer read off a kept-alive connection, as a client reads it: the
# head, then a body by Content-Length (none for 1xx, 204, 304).  Bounded.
sub read_answer {
    my ($s, $buf) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + 10;
    my $more = sub {
        return 0 unless $sel->can_read($deadline - time);
        return sysread($s, $$buf, 65536, length $$buf);
    };
    while ($$buf !~ /\r\n\r\n/) {
        return { status => 0 } if time >= $deadline || !$more->();
    }
    $$buf =~ s/^(.*?)\r\n\r\n//s;
    my $head = $1;
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};
    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    $len = 0 if !defined $len || $status < 200 || $status == 204
                || $status == 304;
    while (length $$buf < $len) {
        last if time >= $deadline || !$more->();
    }
    my $body = substr($$buf, 0, $len, '');
    return { status => $status // 0, head => $head, body => $body,
             json => scalar eval { decode_json($body) } };
}

# two requests on one connection: what the client reads as each answer
sub keepalive {
    my ($first, @headers) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 5)
        or die "connect: $!";
    binmode $s;
    my $buf = '';
    print $s "GET $first HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             . join('', map { "$_\r\n" } @headers) . "\r\n";
    my $a = read_answer($s, \$buf);
    print $s "GET /v2/good.test/bench/app/blobs/$good HTTP/1.1\r\n"
             . "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
    my $b = read_answer($s, \$buf);
    close $s;
    return ($a, $b);
}

# --- 1xx: refused, and the connection carries the next answer -------------

my ($d) = blob('switch');
for my $case (['101 to a client that sent Upgrade', 'up101',
               'Upgrade: websocket', 'Connection: Upgrade'],
              ['100 Continue', 'up100']) {
    my ($what, $mode, @headers) = @$case;
    my ($a, $b) = keepalive("/v2/$mode.test/x/blobs/$d", @headers);
    is($a->{status}, 502, "$what: 502");
    is(code($a), 'UNAVAILABLE', '... with an OCI body');
    is($b->{status}, 200, '... the next request on the connection: 200');
    ok($b->{body} eq $good_data, '... with its own answer, the good blob')
        or diag "got " . length($b->{body}) . " bytes: "
                . substr($b->{body}, 0, 20);
}
like(slurp($ng->{error_log}),
     qr/answer from "up101\.test" repository "up101\/x" has status 101, which the mirror never asks for; refused/,
     'the error log says why');

# no status line (nginx would answer HTTP/0.9: no status line, no
# headers), or a status HTTP has not: a proper 502, then the next answer
for my $mode ('nostatus', 's999', 's600') {
    my ($a, $b) = keepalive("/v2/$mode.test/x/blobs/$d");
    is($a->{status}, 502, "$mode: HTTP/1.1 502");
    is(code($a), 'UNAVAILABLE', '... with an OCI body');
    is($b->{status}, 200, '... the next request on the connection: 200');
}

# a challenge the mirror cannot answer is passed on, Basic lines only:
# a Bearer realm is never handed to a client unchecked (nginx 1.23 and
# later carry every line of the upstream's over)
for my $mode ('r401', 'r401e') {
    my $r = get("/v2/$mode.test/x/blobs/$d");
    is($r->{status}, 401, "$mode: 401 passed on");
    is(join('|', @{ $r->{headers}{'www-authenticate'} // [] }),
       $mode eq 'r401' ? 'Basic realm="upstream"' : '',
       '... with its Basic challenge only');
}

# --- other statuses the mirror never asks for ----------------------------------

for my $case ([206, ['Content-Range: bytes 0-31/32768']], [203], [204],
              [299], [300], [304], [305]) {
    my ($status, $headers) = @$case;
    my ($digest, $data) = blob("status $status");
    mode('s', { status => $status, corrupt => 1, digest => 'auto',
                headers => $headers // [] });
    my $r = get("/v2/s.test/x/blobs/$digest");
    is($r->{status}, 502, "a $status with a corrupt body: 502");
    is(code($r), 'UNAVAILABLE', '... with an OCI body');
    ok(!cached($digest), '... not cached');
    like(slurp($ng->{error_log}),
         qr/answer from "s\.test" repository "s\/x" has status $status, /,
         '... logged');
}

mode('s', { status => 203 });
spew("$hd/tags.json", '{"name":"x","tags":["evil"]}');
my $r = get('/v2/s.test/x/tags/list');
is($r->{status}, 502, 'a tags list answered 203: 502 too');

# --- failures known before any body byte: an answer, not silence ---------

my ($d0, $data0) = blob('empty length');
mode('s', { framing => 'close', headers => ['Content-Length: 0'] });
$r = get("/v2/s.test/x/blobs/$d0");
is($r->{status}, 502, 'a blob answered with Content-Length: 0: 502');
is(code($r), 'UNAVAILABLE', '... with an OCI body');
like(slurp($ng->{error_log}),
     qr/digest mismatch from "s\.test" repository "s\/x": expected \Q$d0\E, computed sha256:e3b0c442/,
     '... logged as a digest mismatch');
is(mismatches(), '1', '... counted');
ok(!cached($d0), '... not cached');

my $empty = 'sha256:' . sha256_hex('');
spew("$hd/blobs/" . substr($empty, 7), '');
mode('s', {});
$r = get("/v2/s.test/x/blobs/$empty");
ok($r->{status} == 200 && $r->{body} eq '', 'the empty blob: 200, empty');
ok(cached($empty), '... cached');

spew("$hd/manifests/latest", '{"schemaVersion":2,"config":{}}');
mode('s', { framing => 'close', headers => ['Content-Length: 0'] });
$r = get('/v2/s.test/x/manifests/latest');
is($r->{status}, 502, 'a tag manifest with Content-Length: 0: 502');
is(mismatches(), '2', '... counted');

my ($d2) = blob('two lengths');
mode('s', { headers => ['Content-Length: 0'] });
$r = get("/v2/s.test/x/blobs/$d2");
is($r->{status}, 502, 'two Content-Length lines: 502');
is(code($r), 'UNAVAILABLE', '... with an OCI body');
# nginx 1.22 keeps both lines and the mirror refuses the answer; since 1.23
# nginx's proxy refuses a second Content-Length itself
like(slurp($ng->{error_log}),
     nginx_version() < 1023000
     ? qr/answer from "s\.test" repository "s\/x" has 2 Content-Length lines; refused/
     : qr/upstream sent duplicate header line: "Content-Length: /,
     '... logged');
ok(!cached($d2), '... not cached');

# --- what nginx handles itself still works ----------------------------------

$r = get("/v2/good.test/bench/app/blobs/$good");
ok($r->{status} == 200 && $r->{body} eq $good_data, 'a good registry\'s blob '
   . 'through the mirror: 200');

unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]/,
       'no worker crashed');

done_testing();
