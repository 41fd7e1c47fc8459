#!/usr/bin/perl

# What a manifest's digest does not settle, checked before its last byte
# goes out.  Schema 1 manifests (served by a real distribution 2.8, by tag
# to clients that accept nothing newer, and by digest when pushed as
# schema 1) are JWS documents whose digest covers the payload without the
# signatures: they verify, are cached and are never counted as
# mismatches; a tampered one fails.  A manifest's top-level mediaType (in
# any case, escaped or repeated) must be the media type it is answered
# as; a body that is not a JSON object, or is larger than 4 MiB, is
# refused.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

my $s1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
my $oci = 'application/vnd.oci.image.manifest.v1+json';
my $index = 'application/vnd.oci.image.index.v1+json';

# a registry that also takes schema 1 pushes
my $reg = start_registry(config => "compatibility:\n  schema1:\n"
                                   . "    enabled: true\n");
my $img = build_image(layers => [{ a => "schema 1\n" }]);
run_ok('skopeo', '--insecure-policy', 'copy', '--format', 'v2s2',
       '--dest-tls-verify=false', $img->{ref},
       "docker://$reg->{host}/library/app:1");
run_ok('skopeo', '--insecure-policy', 'copy', '--format', 'v2s1',
       '--dest-tls-verify=false', $img->{ref},
       "docker://$reg->{host}/library/native:1");

my $h = start_hostile('manifest');
ok($h->{up}, 'hostile upstream up');
my ($hd, $hp) = @$h{qw(dir port)};

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry docker.io $reg->{url};
    registry s1.test      http://127.0.0.1:$hp/s1;
    registry oci.test     http://127.0.0.1:$hp/oci;
    registry chunked.test http://127.0.0.1:$hp/chunked;
    registry notag.test   http://127.0.0.1:$hp/notag;
    registry forge.test   http://127.0.0.1:$hp/forge;
    registry asindex.test http://127.0.0.1:$hp/asindex;

    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
$MIRROR_PARAMS
    }
EOF

sub get { return http_get($port, @_) }
sub mismatches { return mismatches_at($port) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub whole {
    my ($r) = @_;
    return $r->{status} == 200 && $r->{headers}{'content-length'}
           && $r->{headers}{'content-length'}[0] == length $r->{body};
}
sub cached { return cached_digest($ng, $_[0]) }
sub b64url_decode {
    (my $s = $_[0]) =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}
sub b64url {
    (my $s = encode_base64($_[0], '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# what libtrust and distribution take a schema 1 manifest's digest over
sub payload {
    my ($body) = @_;
    my $p = eval {
        my $sig = decode_json($body)->{signatures}[0];
        decode_json(b64url_decode($sig->{protected}));
    } or return '';
    return substr($body, 0, $p->{formatLength})
           . b64url_decode($p->{formatTail});
}

# --- a real distribution 2.8 serving schema 1 ---------------------------------

my $up = http_get($reg->{port}, '/v2/library/app/manifests/1',
                  headers => ["Accept: $s1"]);
my $digest = $up->{headers}{'docker-content-digest'}[0];
is($up->{headers}{'content-type'}[0], $s1,
   'distribution answers the tag with a schema 1 manifest');
is('sha256:' . sha256_hex(payload($up->{body})), $digest,
   '... whose digest is its payload\'s');
isnt('sha256:' . sha256_hex($up->{body}), $digest, '... not its body\'s');

my $r = get('/v2/library/app/manifests/1', headers => ["Accept: $s1"]);
ok(whole($r), 'through the mirror, Accept schema 1: delivered whole')
    or diag "status $r->{status}, " . length($r->{body}) . ' bytes';
is($r->{headers}{'content-type'}[0], $s1, '... as schema 1');
is($r->{headers}{'docker-content-digest'}[0], $digest, '... its digest');
is('sha256:' . sha256_hex(payload($r->{body})), $digest, '... verified');
is(status($r), 'MISS', '... a fill');
is(status(get('/v2/library/app/manifests/1', headers => ["Accept: $s1"])),
   'HIT', '... cached');

$r = get('/v2/library/app/manifests/1');
ok(whole($r), 'a client with no Accept (an old docker): schema 1 whole');
is($r->{headers}{'content-type'}[0], $s1, '... schema 1');

my $native = upstream_digest($reg, 'library/native', '1', $s1);
$r = get("/v2/library/native/manifests/$native", headers => ["Accept: $s1"]);
ok(whole($r), 'a schema 1 manifest pushed as such, by digest: whole');
is('sha256:' . sha256_hex(payload($r->{body})), $native, '... verified');
is(status(get("/v2/library/other/manifests/$native")), 'HIT',
   '... cached under its digest');
is(mismatches(), '0', 'no false alarm: no mismatch counted');
unlike(slurp($ng->{error_log}), qr/digest mismatch|registry: manifest/,
       '... none logged');

# --- schema 1 from a hostile upstream -----------------------------------------

hostile_mode($h, 's1', { type => $s1 });

# A tag pulled through the mirror is kept under its digest (the pulls
# above): a body by that digest is asked upstream only once it is gone.
sub uncache {
    my ($d) = @_;
    my $e = cache_entries("$ng->{dir}/cache");
    unlink map { $e->{$_}[0] } grep { /\Q$d\E/ } keys %$e;
}

# the registry's own bytes: its digest, verified, and now shared
ok(cached($digest), 'the schema 1 tag pulled above is kept by its digest');
uncache($digest);
spew("$hd/manifests/$digest", $up->{body});
$r = get("/v2/s1.test/x/manifests/$digest");
ok(whole($r) && $r->{body} eq $up->{body},
   'the same schema 1 manifest by digest: whole');
is(status(get("/v2/library/app/manifests/$digest")), 'HIT',
   '... and shared under its digest');

# a payload changed under the tag's digest
(my $arm = $up->{body}) =~ s/"architecture": "amd64"/"architecture": "arm64"/
    or die 'no architecture in the schema 1 manifest';
uncache($digest);
spew("$hd/manifests/$digest", $arm);
$r = get("/v2/s1.test/y/manifests/$digest");
ok(!whole($r), 'schema 1, payload changed under the tag\'s digest: not '
               . 'delivered whole');
like(slurp($ng->{error_log}),
     qr/digest mismatch from "s1\.test" repository "s1\/y": expected \Q$digest\E/,
     '... logged as a digest mismatch');
is(mismatches(), '1', '... counted');

# the same bytes, but a protected header that names another formatTail
my $forged = $up->{body};
my $sig = decode_json($forged)->{signatures}[0]{protected};
my $p = decode_json(b64url_decode($sig));
$p->{formatTail} = b64url("\n}\n");
my $forged_sig = b64url(encode_json($p));
$forged =~ s/\Q$sig\E/$forged_sig/ or die;
spew("$hd/manifests/$digest", $forged);
$r = get("/v2/s1.test/y/manifests/$digest");
ok(!whole($r), 'schema 1, formatTail forged: not delivered whole');
is(mismatches(), '2', '... counted');

# --- mediaType ------------------------------------------------------------------

hostile_mode($h, 'oci', { type => "$oci; charset=utf-8" });

sub hostile_manifest {
    my ($json) = @_;
    my $d = 'sha256:' . sha256_hex($json);
    spew("$hd/manifests/$d", $json);
    return $d;
}

my $n = 2;
for my $case (
    ['mediaType an index', qq({"schemaVersion":2,"mediaType":"$index"})],
    ['"MediaType" an index', qq({"schemaVersion":2,"MediaType":"$index"})],
    ['"media\\u0054ype" an index',
     qq({"schemaVersion":2,"media\\u0054ype":"$index"})],
    ['a second mediaType an index',
     qq({"mediaType":"$oci","schemaVersion":2,"mediaType":"$index"})],
    ['mediaType a number', qq({"schemaVersion":2,"mediaType":1})],
    ['not JSON', "schemaVersion: 2\n"],
    ['JSON, not an object', qq(["$oci"])],
) {
    my ($what, $json) = @$case;
    my $d = hostile_manifest($json);
    $r = get("/v2/oci.test/x/manifests/$d");
    ok(!whole($r) && $r->{body} ne $json,
       "answered as an OCI manifest, $what: not delivered");
    is(mismatches(), ++$n, '... counted as a mismatch');
    ok(!cached($d), '... not cached');
}
like(slurp($ng->{error_log}),
     qr/manifest from "oci\.test" repository "oci\/x" has mediaType "\Q$index\E" but is answered as "\Q$oci\E"/,
     'the error log says which mediaType');

for my $case (
    ['its own mediaType', qq({"schemaVersion":2,"mediaType":"$oci"})],
    ['"media\\u0054ype" its own',
     qq({"schemaVersion":2,"media\\u0054ype":"$oci"})],
    ['no mediaType', qq({"schemaVersion":2,"config":{},"layers":[]})],
    ['a nested mediaType of its own',
     qq({"schemaVersion":2,"config":{"mediaType":"$index"}})],
) {
    my ($what, $json) = @$case;
    my $d = hostile_manifest($json);
    $r = get("/v2/oci.test/x/manifests/$d");
    ok(whole($r) && $r->{body} eq $json, "$what: delivered");
    is($r->{headers}{'content-type'}[0], $oci, '... as an OCI manifest');
    is(status(get("/v2/oci.test/y/manifests/$d")), 'HIT', '... cached');
}

# a tag manifest without Docker-Content-Digest: its mediaType still counts
hostile_mode($h, 'notag', { type => $oci });
spew("$hd/manifests/latest", qq({"schemaVersion":2,"mediaType":"$index"}));
$r = get('/v2/notag.test/x/manifests/latest');
ok(!whole($r), 'tag manifest without a digest, mediaType an index: '
               . 'not delivered whole');
is(mismatches(), ++$n, '... counted');

# --- size ---------------------------------------------------------------------

my $big = qq({"schemaVersion":2,"mediaType":"$oci","annotations":{"x":")
        . ('x' x (4 * 1024 * 1024)) . '"}}';
my $bd = hostile_manifest($big);
$r = get("/v2/oci.test/x/manifests/$bd");
is($r->{status}, 502, 'a manifest over 4 MiB: refused');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
like(slurp($ng->{error_log}), qr/larger than 4 MiB/, '... the log says why');

hostile_mode($h, 'chunked', { type => $oci, framing => 'chunked' });
$r = get("/v2/chunked.test/x/manifests/$bd");
ok(!$r->{complete} && length $r->{body} < length $big,
   'chunked, over 4 MiB: cut short');
ok(!cached($bd), '... not cached');

# --- forged schema 1: a payload claimed by any body ---------------------------
#
# libtrust takes formatLength and formatTail on trust: a body can claim any
# payload, so any digest.  Only a body that is its payload with
# "signatures" added last (as libtrust writes it), of a payload that is a
# schema 1 manifest, verifies by its payload.

my $v2 = 'application/vnd.docker.distribution.manifest.v2+json';
my $m = http_get($reg->{port}, '/v2/library/app/manifests/1',
                 headers => ["Accept: $v2"]);
my $md = $m->{headers}{'docker-content-digest'}[0];
is($m->{headers}{'content-type'}[0], $v2, 'the good registry has M, a '
   . 'schema 2 manifest');

# MO: an OCI image manifest without mediaType, on an honest upstream
my $mo = JSON::PP->new->canonical->encode({
    schemaVersion => 2,
    config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                digest => 'sha256:' . '1' x 64, size => 2 },
    layers => [] });
my $mod = 'sha256:' . sha256_hex($mo);

sub protected {
    my ($len, $tail) = @_;
    return b64url(encode_json({ formatLength => $len,
                                formatTail => b64url($tail) }));
}

# room enough in the body for what the protected header claims
my $pad = '"pad":"' . ('x' x (4 * length $m->{body})) . '",';

hostile_mode($h, 'forge', { type => $s1 });
my $before = mismatches();
my $k = 0;
for my $case (
    ["the reviewer's: formatLength 0, M in formatTail", $md,
     qq({"schemaVersion":1,"name":"x",$pad"signatures":[{"signature":"x",)
     . '"protected":"' . protected(0, $m->{body}) . '"}]}'],
    ['formatLength 1, the rest of M in formatTail', $md,
     qq({"schemaVersion":1,$pad"signatures":[{"signature":"x","protected":")
     . protected(1, substr($m->{body}, 1)) . '"}]}'],
    ['MO with signatures not last', $mod,
     substr($mo, 0, -1) . ',"signatures":[{"signature":"x","protected":"'
     . protected(length($mo) - 1, '}') . '"}],"x":1}'],
    ['MO signed as libtrust would: schemaVersion 2', $mod,
     substr($mo, 0, -1) . ',"signatures":[{"signature":"x","protected":"'
     . protected(length($mo) - 1, '}') . '"}]}'],
) {
    my ($what, $d, $body) = @$case;
    spew("$hd/manifests/$d", $body);
    $r = get("/v2/forge.test/f/manifests/$d");
    ok(!($r->{status} == 200 && $r->{body} eq $body && $r->{complete}
         && whole($r)), "forged schema 1, $what: not delivered");
    ok(!cached($d), '... not cached');
    is(mismatches(), $before + ++$k, '... counted');
}

$r = get("/v2/library/app/manifests/$md", headers => ["Accept: $v2"]);
ok(whole($r) && $r->{body} eq $m->{body},
   'the good registry\'s clients then get M\'s own bytes');
is($r->{headers}{'content-type'}[0], $v2, '... as schema 2');
is(status($r), 'MISS', '... fetched, not a forged entry');

# --- no mediaType: the members say what it is ----------------------------------

hostile_mode($h, 'asindex', { type => $index });
spew("$hd/manifests/$mod", $mo);
$before = mismatches();
$r = get("/v2/asindex.test/x/manifests/$mod");
ok(!whole($r), 'MO, the right bytes answered as an index: not delivered');
ok(!cached($mod), '... not cached');
is(mismatches(), $before + 1, '... counted');
like(slurp($ng->{error_log}),
     qr/manifest from "asindex\.test" repository "asindex\/x" has no mediaType and not the members of a \Q$index\E/,
     '... and logged');

$r = get("/v2/oci.test/x/manifests/$mod");
ok(whole($r) && $r->{body} eq $mo, 'MO from an honest upstream: delivered');
is($r->{headers}{'content-type'}[0], $oci, '... as an OCI manifest');
$r = get("/v2/asindex.test/y/manifests/$mod");
is(status($r), 'HIT', '... cached, and through the other registry');
is($r->{headers}{'content-type'}[0], $oci, '... still an OCI manifest');

my $ix = '{"schemaVersion":2,"manifests":[]}';
my $ixd = hostile_manifest($ix);
$r = get("/v2/asindex.test/x/manifests/$ixd");
ok(whole($r) && $r->{body} eq $ix, 'an index without mediaType, answered '
   . 'as one: delivered');

unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]/,
       'no worker crashed');

done_testing();
