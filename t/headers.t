#!/usr/bin/perl

# What the mirror answers with is the mirror's to decide.  A hostile
# upstream's blob and manifest answers carry Content-Type text/html, a
# wrong Docker-Content-Digest, Set-Cookie, Location, HSTS,
# Content-Disposition and more; the fill and every hit of the shared
# digest entry (through another registry) carry only the mirror's headers:
# Content-Type by endpoint (a manifest's own media type, parameters
# dropped; a manifest answered as anything else is refused), the digest,
# Content-Length, the mirror's own, and the operator's add_header.  Tag
# manifests, tags lists (with the next page's Link rewritten), referrers
# and upstream errors passed on get the same.  A body that is not
# identity-encoded is never cached; a digest fill with Content-Encoding
# fails as a digest mismatch does.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use RegistryTest;

my $h = start_hostile('headers');
ok($h->{up}, 'hostile upstream up');
my ($hd, $hp) = @$h{qw(dir port)};

sub blob {
    my ($name) = @_;
    my $data = join '', map { Digest::SHA::sha256("$name $_") } 1 .. 4096;
    my $digest = 'sha256:' . sha256_hex($data);
    spew("$hd/blobs/" . substr($digest, 7), $data);
    return ($digest, $data);
}

sub manifest {
    my ($name, $ref) = @_;
    my ($config) = blob("$name config");
    my ($layer) = blob("$name layer");
    my $json = JSON::PP->new->canonical->encode({
        schemaVersion => 2,
        mediaType => 'application/vnd.oci.image.manifest.v1+json',
        config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                    digest => $config, size => 131072 },
        layers => [{ mediaType => 'application/vnd.oci.image.layer.v1.tar',
                     digest => $layer, size => 131072 }] });
    my $digest = 'sha256:' . sha256_hex($json);
    spew("$hd/manifests/$digest", $json);
    spew("$hd/manifests/$ref", $json) if $ref;
    return ($digest, $json);
}

sub mode { hostile_mode($h, $_[0], $_[1]) }

my @evil = (
    'Set-Cookie: session=stolen; Path=/',
    'Location: https://evil.example/',
    'Strict-Transport-Security: max-age=31536000; includeSubDomains',
    'Content-Disposition: attachment; filename="x.html"',
    'X-Registry-Cache: HIT',
    'Docker-Distribution-API-Version: evil/1.0',
    'OCI-Namespace: evil.example',
    'ETag: "evil"',
    'Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT',
    'Cache-Control: public, max-age=31536000',
    'Expires: Thu, 01 Jan 2037 00:00:00 GMT',
    'Link: <https://evil.example/>; rel=preload',
    'Refresh: 0; url=https://evil.example/',
    'WWW-Authenticate: Basic realm="evil"',
    'Vary: Cookie',
    'Content-Language: xx',
    'Access-Control-Allow-Origin: *',
    'Accept-Ranges: none',
    'Server: evil',
    'X-Evil: 1',
);

mode('evil', { type => 'text/html; charset=utf-8', headers => \@evil,
               digest => 'sha256:' . '0' x 64, reason => 'Evil <b>' });
mode('evilm', { type => 'application/vnd.oci.image.manifest.v1+json; '
                        . 'charset=evil',
                headers => \@evil, digest => 'sha256:' . '0' x 64 });
mode('eviltag', { type => 'application/vnd.oci.image.manifest.v1+json',
                  headers => \@evil, digest => 'auto' });
mode('html', { type => 'text/html' });
mode('plain', {});
mode('gzip', { headers => ['Content-Encoding: gzip'], digest => 'auto' });
mode('gziptag', { headers => ['Content-Encoding: gzip'] });
mode('lists', { headers => [@evil[0 .. 3],
                            'Link: </v2/lists/x/tags/list?n=2&last=b>; '
                            . 'rel="next"',
                            'OCI-Filters-Applied: artifactType'] });
mode('error', { status => 500, type => 'application/json; charset=utf-8',
                headers => \@evil });
spew("$hd/tags.json", '{"name":"x","tags":["a","b"]}');
spew("$hd/referrers.json", encode_json({
    schemaVersion => 2,
    mediaType => 'application/vnd.oci.image.index.v1+json',
    manifests => [] }));

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry evil.test    http://127.0.0.1:$hp/evil;
    registry evilm.test   http://127.0.0.1:$hp/evilm;
    registry eviltag.test http://127.0.0.1:$hp/eviltag;
    registry html.test    http://127.0.0.1:$hp/html;
    registry other.test   http://127.0.0.1:$hp/plain;
    registry gzip.test    http://127.0.0.1:$hp/gzip;
    registry gziptag.test http://127.0.0.1:$hp/gziptag;
    registry lists.test   http://127.0.0.1:$hp/lists;
    registry error.test   http://127.0.0.1:$hp/error;

    server {
        listen 127.0.0.1:$port;
        add_header X-Operator yes always;
$MIRROR_PARAMS
    }
EOF

sub get { return http_get($port, @_) }
sub mismatches { return mismatches_at($port) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub names { return join ' ', sort keys %{ $_[0]{headers} } }
sub header { return join "\n", @{ $_[0]{headers}{$_[1]} // [] } }
sub cached { return cached_digest($ng, $_[0]) }

my $base = 'connection content-length content-type date '
         . 'docker-distribution-api-version';

# every header of an answer, and the values the mirror decides
sub answer_is {
    my ($r, $what, %want) = @_;
    my @names = split ' ', $base;
    push @names, 'x-operator', 'x-registry-cache', 'cache-status';
    push @names, 'docker-content-digest', 'etag' if $want{digest};
    push @names, @{ $want{more} // [] };
    is(names($r), join(' ', sort @names, 'server'), "$what: only the "
       . "mirror's headers");
    is(header($r, 'content-type'), $want{type}, "$what: Content-Type");
    is(header($r, 'docker-distribution-api-version'), 'registry/2.0',
       "$what: the mirror's API version");
    like(header($r, 'server'), qr/^nginx/, "$what: nginx's Server");
    like($r->{raw}, qr{^HTTP/1\.1 \d{3} [A-Za-z ]+\r\n}, "$what: nginx's "
         . 'status line');
    is(header($r, 'x-registry-cache'), $want{cache}, "$what: cache status")
        if $want{cache};
    like(header($r, 'cache-status'),
         qr/^(?:[A-Za-z*][^,]*|"[^"]*"); (?:hit|fwd=)/,
         "$what: Cache-Status is the mirror's own entry alone");
    if ($want{digest}) {
        is(header($r, 'docker-content-digest'), $want{digest},
           "$what: Docker-Content-Digest is the digest");
        is(header($r, 'etag'), "\"$want{digest}\"", "$what: ETag");
    }
}

# --- a blob: the fill, and a hit through another registry -------------------

my ($d, $data) = blob('blob');
my $r = get("/v2/evil.test/x/blobs/$d");
ok($r->{status} == 200 && $r->{body} eq $data, 'blob fill: 200, the blob');
answer_is($r, 'blob fill', type => 'application/octet-stream',
          digest => $d, cache => 'MISS');

$r = get("/v2/other.test/y/blobs/$d");
ok($r->{status} == 200 && $r->{body} eq $data, 'blob hit: 200, the blob');
answer_is($r, 'blob hit, another registry', type => 'application/octet-stream',
          digest => $d, cache => 'HIT', more => ['accept-ranges']);

$r = get("/v2/y/blobs/$d?ns=other.test", method => 'HEAD');
answer_is($r, 'blob hit, HEAD with ns', type => 'application/octet-stream',
          digest => $d, cache => 'HIT', more => ['accept-ranges',
                                                 'oci-namespace']);
is(header($r, 'oci-namespace'), 'other.test', '... ns echoed');

# --- a manifest by digest ----------------------------------------------------------

my ($md, $mjson) = manifest('bydigest');
$r = get("/v2/evilm.test/x/manifests/$md");
ok($r->{status} == 200 && $r->{body} eq $mjson,
   'manifest fill: 200, the manifest');
answer_is($r, 'manifest fill',
          type => 'application/vnd.oci.image.manifest.v1+json',
          digest => $md, cache => 'MISS');
$r = get("/v2/other.test/y/manifests/$md");
ok($r->{status} == 200 && $r->{body} eq $mjson, 'manifest hit: the manifest');
answer_is($r, 'manifest hit, another registry',
          type => 'application/vnd.oci.image.manifest.v1+json',
          digest => $md, cache => 'HIT', more => ['accept-ranges']);

($md) = manifest('html');
$r = get("/v2/html.test/x/manifests/$md");
is($r->{status}, 502, 'manifest answered as text/html: refused');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
ok(!cached($md), '... not cached');
like(slurp($ng->{error_log}),
     qr/manifest from "html\.test" repository "html\/x" has Content-Type "text\/html", not a manifest media type; refused/,
     '... and the error log says why');

# --- a tag manifest, tags list, referrers, an upstream error ---------------

my ($td, $tjson) = manifest('tag', 'latest');
$r = get('/v2/eviltag.test/x/manifests/latest');
ok($r->{status} == 200 && $r->{body} eq $tjson, 'tag manifest: the manifest');
answer_is($r, 'tag manifest',
          type => 'application/vnd.oci.image.manifest.v1+json',
          digest => $td, cache => 'MISS');
$r = get('/v2/eviltag.test/x/manifests/latest');
answer_is($r, 'tag manifest hit',
          type => 'application/vnd.oci.image.manifest.v1+json',
          digest => $td, cache => 'HIT', more => ['accept-ranges']);

$r = get('/v2/lists.test/x/tags/list?n=2');
is($r->{body}, '{"name":"x","tags":["a","b"]}', 'tags list');
answer_is($r, 'tags list', type => 'application/json', cache => 'MISS',
          more => ['link']);
is(header($r, 'link'), '</v2/lists.test/x/tags/list?n=2&last=b>; rel="next"',
   '... the next page in the mirror\'s own terms');

my $art = 'application/vnd.example.sbom';
$r = get("/v2/lists.test/x/referrers/$d?artifactType=$art");
is($r->{status}, 200, 'referrers');
answer_is($r, 'referrers', type => 'application/vnd.oci.image.index.v1+json',
          cache => 'MISS', more => ['oci-filters-applied']);
is(header($r, 'oci-filters-applied'), 'artifactType',
   '... the filter the mirror passed on was applied upstream');

($d) = blob('error');
$r = get("/v2/error.test/x/blobs/$d");
is($r->{status}, 500, 'an upstream 500: 500');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE',
   '... with the mirror\'s own OCI body (the upstream\'s is not passed on)');
answer_is($r, 'upstream error', type => 'application/json; charset=utf-8',
          cache => 'MISS');

# --- Content-Encoding -------------------------------------------------------------

($d, $data) = blob('gzip');
$r = get("/v2/gzip.test/x/blobs/$d");
is($r->{status}, 502, 'blob with Content-Encoding: refused');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
like(slurp($ng->{error_log}),
     qr/digest mismatch from "gzip\.test" repository "gzip\/x": expected \Q$d\E, got a body with Content-Encoding "gzip"/,
     '... logged as a digest mismatch');
is(mismatches(), '1', '... and counted');
ok(!cached($d), '... not cached');

$r = get('/v2/gziptag.test/x/manifests/latest');
is($r->{status}, 502, 'tag manifest with Content-Encoding, no digest: '
                      . 'refused');
is(mismatches(), '2', '... counted');

mode('lists', { headers => ['Content-Encoding: gzip'] });
$r = get('/v2/lists.test/x/tags/list?n=3');
is(header($r, 'content-encoding'), 'gzip',
   'a gzip tags list is passed on as it came');
is(status(get('/v2/lists.test/x/tags/list?n=3')), 'MISS', '... never cached');

unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]/,
       'no worker crashed');

done_testing();
