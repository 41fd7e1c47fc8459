#!/usr/bin/perl

# Issue 11 against hostile upstreams (a review): a private entry that one
# client's credentials filled from one registry must not be handed out on
# the word of another upstream, nor of another registry's token realm.
#
# Two hostile registries (t/lib/hostile.pl): A, the victim's registry
# ("a.test", auth=client), which lets through only the token "tok-a"; B,
# another upstream of the same mirror (as "b.test" with auth=client, and
# as "evil.test" without), whose realm hands out whatever JWT it likes
# and which answers 200 to a HEAD of any blob.  The victim pulls the blob
# team/secret/blobs/<D> from A with tok-a (a private entry, "* blob <D>",
# and D known to belong to A's team/secret).  Then:
#
# 1. A JWT from B's realm, fetched through the mirror's relay with
#    service=b.test, grants "team/secret" (a name B may well have: two
#    Harbors, both with a project "team").  The mirror keeps the grant as
#    "G <hash of the token>" without the registry it came from, and takes
#    it for a.test's team/secret: the private blob is served from the
#    cache, A never asked.  Fixed: grants are kept with their registry
#    (key "G <hash> <registry>", or the registry in the value) and only
#    that registry's repositories are allowed by them.
#
# 2. An anonymous request for evil.test/team/secret/blobs/<D>: the private
#    entry is checked with a HEAD at B, which answers 200 (it has no such
#    blob, it just says so), and the private blob is served.  A HEAD's 200
#    proves nothing about content another upstream filled.  Fixed: the
#    private mark names the registry that filled it ("registry:private
#    <registry>") and a private entry is served only for checks against
#    that registry's upstream (or a registry with the same upstream URL);
#    elsewhere it is a miss (filled again from that upstream, verified) or
#    refused.
#
# 2b. The same through a tag: evil.test's HEAD of a tag names the digest
#    of A's private manifest; the tag map's word (auth_proved: a tag with
#    a resolved digest) serves the private "* manifest <digest>" entry.
#
# What held (kept as guards): a realm off the upstream's origin that the
# server does not allow (http here) is not fetched by the relay; a check
# that hangs is 503 UNAVAILABLE; an upstream's own Bearer challenge never
# reaches a client with a wrong token (tags list, blob, tag).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

sub b64url { my $s = encode_base64($_[0], ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s }
sub jwt {
    my (%claims) = @_;
    return join '.', b64url('{"alg":"RS256","typ":"JWT"}'),
                     b64url(encode_json(\%claims)), b64url('signature');
}
sub code { return eval { $_[0]{json}{errors}[0]{code} } // '' }

my %h;
for my $n (qw(a b)) {
    $h{$n} = start_hostile($n);
    ok($h{$n}{up}, "hostile upstream $n up");
}
sub mode { hostile_mode($h{ $_[0] }, $_[1], $_[2]) }
sub upstream { hostile_asked($h{ $_[0] }, $_[1]) }

# A: the secret blob, readable only with tok-a
my $secret = "the secret layer of team/secret on A\n" x 64;
my $D = 'sha256:' . sha256_hex($secret);
spew("$h{a}{dir}/blobs/" . substr($D, 7), $secret);
# its realm hands anyone else a token A refuses
mode('a', 'team', { auth => 'tok-a', digest => 'auto',
                    token_body => '{"token":"not-tok-a"}' });
mode('a', 'ping', { auth => 'tok-a' });

# B: its realm grants team/secret to anyone; every HEAD of a blob is 200
my $granted = jwt(access => [{ type => 'repository', name => 'team/secret',
                               actions => ['pull'] }],
                  exp => time + 600, iss => 'b');
mode('b', 'ping', { auth => 'never',
                    token_body => encode_json({ token => $granted,
                                                expires_in => 600 }) });
mode('b', 'team', { head => { raw => "HTTP/1.1 200 OK\r\n"
                              . "Content-Type: application/octet-stream\r\n"
                              . 'Content-Length: ' . length($secret) . "\r\n"
                              . "Docker-Content-Digest: $D\r\n"
                              . "Connection: close\r\n\r\n" } });

# A: a private manifest of team/secret; a repository whose checks hang
my $mbody = encode_json({
    schemaVersion => 2,
    mediaType => 'application/vnd.oci.image.manifest.v1+json',
    config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                digest => $D, size => length $secret },
    layers => [], annotations => { secret => 'team/secret on A' } });
my $Dm = 'sha256:' . sha256_hex($mbody);
spew("$h{a}{dir}/manifests/$Dm", $mbody);
mode('a', 'slow', { auth => 'tok-a', delay => 6,
                    token_body => '{"token":"not-tok-a"}' });
spew("$h{a}{dir}/blobs/" . ('0' x 64), 'slow');

# B: any tag of "tags/..." names A's private manifest
mode('b', 'tags', { head => { raw => "HTTP/1.1 200 OK\r\n"
                              . "Content-Type: application/vnd.oci.image."
                              . "manifest.v1+json\r\n"
                              . 'Content-Length: ' . length($mbody) . "\r\n"
                              . "Docker-Content-Digest: $Dm\r\n"
                              . "Connection: close\r\n\r\n" } });

# C: an upstream whose challenge names a realm off its origin, on loopback
$h{c} = start_hostile('c');
ok($h{c}{up}, 'hostile upstream c up');
mode('c', 'ping', { auth => 'never',
    challenge => "Bearer realm=\"http://127.0.0.1:$h{a}{port}/token/ping\","
                 . 'service="c"' });

my $port = free_port();
my $port2 = free_port();
my $ng = start_nginx(ports => [$port, $port2], http => <<"EOF");
    registry a.test    http://127.0.0.1:$h{a}{port} auth=client;
    registry b.test    http://127.0.0.1:$h{b}{port} auth=client;
    registry evil.test http://127.0.0.1:$h{b}{port};
    registry c.test    http://127.0.0.1:$h{c}{port} auth=client;
    server {
        listen 127.0.0.1:$port2;
        registry_default c.test;
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
        }
    }
    server {
        listen 127.0.0.1:$port;
        registry_default a.test;
        proxy_read_timeout 2s;
        registry_redirect_http on;
        registry_redirect_allow 127.0.0.0/8;
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
        }
    }
EOF

# the victim's pull: a private entry of D, D known in A's team/secret
my $r = http_get($port, "/v2/a.test/team/secret/blobs/$D",
                 headers => ['Authorization: Bearer tok-a']);
is($r->{status}, 200, 'the victim pulls the secret blob from A with tok-a');
is($r->{body}, $secret, '... its bytes');
ok(upstream('a', qr{^GET /v2/team/secret/blobs/$D Bearer tok-a}),
   '... filled from A with tok-a (a private entry)');

# without credentials, through A: refused (the entry is private)
$r = http_get($port, "/v2/a.test/team/secret/blobs/$D");
ok($r->{body} ne $secret, 'anonymous through a.test: not the secret');

subtest '1: a token from another registry\'s realm grants nothing on A'
=> sub {
    my $t = http_get($port, '/_registry/auth?service=b.test'
                            . '&scope=repository:team/secret:pull',
                     headers => ['Authorization: Basic '
                                 . encode_base64('mallory:pw', '')]);
    is($t->{status}, 200, 'B\'s realm answers the relay with its token');
    my $tok = eval { $t->{json}{token} } // '';
    is($tok, $granted, '... the JWT granting "team/secret" (B\'s name)');

    my $before = upstream('a', qr{^\S+ /v2/team/secret/});
    for my $method ('GET', 'HEAD') {
        $r = http_get($port, "/v2/a.test/team/secret/blobs/$D",
                      method => $method,
                      headers => ["Authorization: Bearer $tok"]);
        isnt($r->{status}, 200, "$method a.test/team/secret/blobs/<D> with "
             . "B's token: not 200") or diag $r->{status};
        ok($r->{body} ne $secret, '... not the secret');
    }
    # asked of A (its 401 reaches the client as the mirror's challenge),
    # never decided by B's grant
    ok(upstream('a', qr{^\S+ /v2/team/secret/}) > $before,
       'A was asked about B\'s token');
};

# A GET must fail (the other upstream cannot produce the bytes); a HEAD
# may be the other upstream's own answer (it says what it likes about
# itself, as on any miss), never the private entry's (X-Registry-Cache
# HIT).
sub not_opened {
    my ($r, $method, $what) = @_;
    if ($method eq 'GET') {
        isnt($r->{status}, 200, "anonymous GET $what: not 200")
            or diag $r->{status};
    } else {
        isnt($r->{headers}{'x-registry-cache'}[0] // '', 'HIT',
             "anonymous HEAD $what: not answered from the private entry");
    }
}

subtest '2: another upstream\'s 200 to a HEAD opens no private entry' => sub {
    for my $method ('GET', 'HEAD') {
        $r = http_get($port, "/v2/evil.test/team/secret/blobs/$D",
                      method => $method);
        not_opened($r, $method, "evil.test/team/secret/blobs/<D>");
        ok($r->{body} ne $secret, '... not the secret');
    }
    $r = http_get($port, "/v2/evil.test/team/secret/blobs/$D",
                  headers => ['Range: bytes=0-99']);
    isnt(substr($r->{body}, 0, 20), substr($secret, 0, 20),
         'a Range of it: not the secret');
};

subtest '2b: another upstream\'s tag naming A\'s private manifest' => sub {
    $r = http_get($port, "/v2/a.test/team/secret/manifests/$Dm",
                  headers => ['Authorization: Bearer tok-a',
                              'Accept: application/vnd.oci.image.manifest.v1+json']);
    is($r->{status}, 200, 'the victim pulls the private manifest from A');
    for my $method ('GET', 'HEAD') {
        $r = http_get($port, '/v2/evil.test/tags/x/manifests/latest',
                      method => $method,
                      headers => ['Accept: application/vnd.oci.image.'
                                  . 'manifest.v1+json']);
        not_opened($r, $method, "evil.test's tag naming it");
        ok($r->{body} ne $mbody, '... not the private manifest');
    }
};

subtest 'held: a realm off the upstream\'s origin, not allowed (http)'
=> sub {
    my $before = upstream('a', qr{^GET /token/});
    my $t = http_get($port2, '/_registry/auth?service=c.test'
                             . '&scope=repository:x/y:pull',
                     headers => ['Authorization: Basic '
                                 . encode_base64('u:pw', '')]);
    is($t->{status}, 502, 'the relay refuses it: 502');
    is(upstream('a', qr{^GET /token/}), $before, '... never asked');
    like(slurp($ng->{error_log}), qr/token realm .* not fetched/,
         '... and says why');
};

subtest 'held: a check that hangs is 503, never a guess' => sub {
    my $z = 'sha256:' . ('0' x 64);
    $r = http_get($port, "/v2/a.test/slow/x/blobs/$z",
                  headers => ['Authorization: Bearer tok-a']);
    is($r->{status}, 503, 'a check timing out: 503');
    is(code($r), 'UNAVAILABLE', '... UNAVAILABLE');
};

subtest 'held: the upstream\'s own challenge never reaches the client' => sub {
    for my $p ('/v2/a.test/team/secret/tags/list',
               "/v2/a.test/team/secret/blobs/$D",
               '/v2/a.test/team/secret/manifests/1') {
        $r = http_get($port, $p, headers => ['Authorization: Bearer forged']);
        my $w = join ' ', @{ $r->{headers}{'www-authenticate'} // [] };
        unlike($w, qr{/token/}, "$p with a wrong token: no upstream realm")
            or diag $w;
        ok($r->{body} ne $secret, '... not the secret');
    }
};

unlike(slurp($ng->{error_log}),
       qr/\[(?:alert|crit|emerg)\]|exited on signal/,
       'no worker crashed, nothing critical logged');

stop($ng->{pid});
stop($h{$_}{pid}) for sort keys %h;

done_testing();
