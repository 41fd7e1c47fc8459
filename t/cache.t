#!/usr/bin/perl

# Caching: blobs and manifests are stored once under their digest,
# whatever repository asked, and a tag is served by the digest it names
# for the normalised Accept list, which is also what goes upstream; HEAD
# is served from the cache but never fills it; Range is served from the
# cache; tags expire after registry_tag_valid and are checked with one
# HEAD; the cache status is in a response header (which can be turned
# off) and in a log variable.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(time);
use RegistryTest;

my $reg = start_registry();

my $noise = join '', map { Digest::SHA::sha256("layer $_") } 1 .. 16384;
my $img = build_image(layers => [{ big => $noise }, { small => "small\n" }]);
push_image($img, $reg, 'library/a:1');
push_image($img, $reg, 'library/b:1');
my $other = build_image(layers => [{ cold => "cold layer\n" x 1000 }]);
push_image($other, $reg, 'library/cold:1');
push_image($other, $reg, 'library/cold:fresh');
push_image(build_index_image(), $reg, 'library/multi:oci', all => 1);
run_ok('skopeo', '--insecure-policy', 'copy', '--all', '--format', 'v2s2',
       '--src-tls-verify=false', '--dest-tls-verify=false',
       "docker://$reg->{host}/library/multi:oci",
       "docker://$reg->{host}/library/multi:docker");

# a plain nginx in front of the registry shows what the mirror sends
my $fport = free_port();
my $front = start_nginx(ports => [$fport], http => <<"EOF");
    log_format front '\$request "\$http_accept" \$status';
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/front.log front;
        location / { proxy_pass $reg->{url}; }
    }
EOF
my $front_log = "$front->{dir}/front.log";

my $port = free_port();
my $port_quiet = free_port();
my $port_short = free_port();
my $ng = start_nginx(ports => [$port, $port_quiet, $port_short],
                     http => <<"EOF");
    log_format cache '\$registry_cache_status \$request';
    registry docker.io http://127.0.0.1:$fport;

    server {
        listen 127.0.0.1:$port_short;
        registry_default docker.io;
        registry_tag_valid 2s;
        include $ROOT/registry_params;
    }

    server {
        listen 127.0.0.1:$port;
        access_log \@DIR\@/cache.log cache;
        registry_default docker.io;
        include $ROOT/registry_params;
    }

    server {
        listen 127.0.0.1:$port_quiet;
        access_log \@DIR\@/quiet.log cache;
        registry_default docker.io;
        registry_cache_header off;
        include $ROOT/registry_params;
    }
EOF
my $cache = "$ng->{dir}/cache";

my @all = map { "Accept: $_" }
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json';

sub get { return http_get($port, @_) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // [''])->[0] }
sub upstream_count {
    my ($re) = @_;
    return scalar grep { /$re/ } registry_requests($reg);
}

# --- one copy per digest, whatever the repository ----------------------

my $m = decode_json(get('/v2/library/a/manifests/1', headers => \@all)->{body});
my $layer = $m->{layers}[0]{digest};
my $mdig = upstream_digest($reg, 'library/a', '1');

my $r = get("/v2/library/a/blobs/$layer");
is(status($r), 'MISS', 'blob through repository a: MISS');
is('sha256:' . sha256_hex($r->{body}), $layer, 'blob bytes');
$r = get("/v2/library/b/blobs/$layer");
is(status($r), 'HIT', 'same blob through repository b: HIT');
is('sha256:' . sha256_hex($r->{body}), $layer, 'blob bytes from cache');
is(eventually(sub {
       upstream_count(qr{^GET /v2/library/\w+/blobs/\Q$layer\E$}) }),
   1, 'the blob was fetched upstream once');

$r = get("/v2/library/a/manifests/$mdig", headers => \@all);
is(status($r), 'HIT', 'manifest by digest through a: HIT (the tag pulled '
   . 'above is kept under its digest)');
$r = get("/v2/library/b/manifests/$mdig", headers => [$all[1]]);
is(status($r), 'HIT', 'manifest by digest through b: HIT');
is('sha256:' . sha256_hex($r->{body}), $mdig, 'manifest bytes from cache');
is(eventually(sub {
       upstream_count(qr{^GET /v2/library/\w+/manifests/\Q$mdig\E$}) }),
   1, 'the manifest was fetched upstream once');

my $entries = cache_entries($cache);
is(scalar(grep { /\Q$layer\E/ } keys %$entries), 1,
   'one cache file holds the blob');
ok($entries->{"* blob $layer"}, "keyed by the digest alone");

# --- tags: the normalised Accept list is the key and goes upstream ------

my $oci = get('/v2/library/multi/manifests/oci', headers => \@all);
is($oci->{status}, 200, 'OCI index for a client that accepts it');
is($oci->{headers}{'content-type'}[0],
   'application/vnd.oci.image.index.v1+json', 'content type: OCI index');
is(status($oci), 'MISS', 'first ask: MISS');

my $sent = eventually(sub {
    (grep { m{^HEAD /v2/library/multi/manifests/oci } }
     file_lines($front_log))[0] }) // '';
is(($sent =~ /"([^"]*)"/)[0],
   'application/vnd.docker.distribution.manifest.list.v2+json, '
   . 'application/vnd.docker.distribution.manifest.v2+json, '
   . 'application/vnd.oci.image.index.v1+json, '
   . 'application/vnd.oci.image.manifest.v1+json',
   'upstream got the Accept lines combined, sorted');

$r = get('/v2/library/multi/manifests/oci',
         headers => ['Accept: application/vnd.docker.distribution.manifest.v2+json']);
is($r->{status}, 404, 'schema-2-only client: the upstream answer (404), '
   . 'not the cached index');

$r = get('/v2/library/multi/manifests/oci', headers => [
         'Accept: application/vnd.docker.distribution.manifest.v2+json, '
         . 'application/vnd.OCI.image.index.v1+json; q=0.5',
         'Accept: */*, application/json, text/x-unknown; q=0',
         'accept: application/vnd.oci.image.manifest.v1+json',
         'Accept: application/vnd.docker.distribution.manifest.list.v2+json',
         'Accept: application/vnd.docker.distribution.manifest.v2+json']);
is(status($r), 'HIT', 'same types in another order, duplicated, with '
   . 'wildcards and unknown types: HIT');
is($r->{body}, $oci->{body}, '... and the same index');

$r = get('/v2/library/multi/manifests/oci', headers => [
         'Accept: application/vnd.oci.image.index.v1+json;q=0, '
         . 'application/vnd.docker.distribution.manifest.v2+json']);
is($r->{status}, 404, 'q=0 refuses the index: not served from cache');
$sent = eventually(sub {
    my $l = (grep { m{^HEAD /v2/library/multi/manifests/oci } }
             file_lines($front_log))[-1] // '';
    $l =~ /"application\/vnd\.docker\.distribution\.manifest\.v2\+json"/
        ? $l : undef;
}) // '';
is(($sent =~ /"([^"]*)"/)[0],
   'application/vnd.docker.distribution.manifest.v2+json',
   'q=0 type dropped from the upstream Accept');

my $list = get('/v2/library/multi/manifests/docker', headers => \@all);
is($list->{headers}{'content-type'}[0],
   'application/vnd.docker.distribution.manifest.list.v2+json',
   'list-aware client gets the manifest list');
my $one = get('/v2/library/multi/manifests/docker', headers => [$all[3]]);
is($one->{headers}{'content-type'}[0],
   'application/vnd.docker.distribution.manifest.v2+json',
   'schema-2-only client gets a single manifest');
isnt($one->{body}, $list->{body}, 'two different documents');
$r = get('/v2/library/multi/manifests/docker', headers => [$all[3]]);
is(status($r), 'HIT', 'schema-2-only again: HIT');
is($r->{body}, $one->{body}, '... its own document');
$r = get('/v2/library/multi/manifests/docker', headers => [reverse @all]);
is(status($r), 'HIT', 'list-aware again: HIT');
is($r->{body}, $list->{body}, '... its own document');

# --- HEAD and Range ------------------------------------------------------

my $cm = decode_json(get('/v2/library/cold/manifests/1',
                         headers => \@all)->{body});
my $cold = $cm->{layers}[0]{digest};

my $heads = upstream_count(qr{^HEAD /v2/library/cold/blobs/\Q$cold\E$});
$r = get("/v2/library/cold/blobs/$cold", method => 'HEAD');
is($r->{status}, 200, 'HEAD on a cold blob');
is(eventually(sub {
       my $n = upstream_count(qr{^HEAD /v2/library/cold/blobs/\Q$cold\E$});
       $n > $heads ? $n : 0 }),
   $heads + 1, 'cold HEAD costs the upstream a HEAD');
is(upstream_count(qr{^GET /v2/library/cold/blobs/\Q$cold\E$}), 0,
   '... not a download');
ok(!cache_entries($cache)->{"* blob $cold"},
   'HEAD created no cache entry');

$r = get("/v2/library/cold/blobs/$cold");
is(status($r), 'MISS', 'GET after HEAD: MISS');
my $cold_body = $r->{body};

my $before = scalar registry_requests($reg);
$r = get("/v2/library/cold/blobs/$cold", method => 'HEAD');
is(status($r), 'HIT', 'HEAD on a cached blob: HIT');
is($r->{headers}{'content-length'}[0], length $cold_body,
   'HEAD: length of the cached blob');
is($r->{body}, '', 'HEAD: no body');
$r = get('/v2/library/a/manifests/' . $mdig, method => 'HEAD',
         headers => \@all);
is(status($r), 'HIT', 'HEAD on a cached manifest: HIT');
is($r->{headers}{'docker-content-digest'}[0], $mdig, 'HEAD: digest');

$r = get("/v2/library/cold/blobs/$cold", headers => ['Range: bytes=5-104']);
is($r->{status}, 206, 'Range on a cached blob: 206');
is(status($r), 'HIT', 'Range: from the cache');
is($r->{body}, substr($cold_body, 5, 100), 'Range: the right bytes');
is($r->{headers}{'content-range'}[0],
   'bytes 5-104/' . length($cold_body), 'Range: Content-Range');
is(scalar registry_requests($reg), $before,
   'HEAD and Range on cached content did not go upstream');

# --- tag validity: a HEAD checks an expired tag, served by digest ---------

# The validity is the reading server's: 2 s here.  Checked at second S,
# the tag is fresh through S+1 and checked again from S+2 on.
sub front_count {
    my ($re) = @_;
    return scalar grep { /$re/ } file_lines($front_log);
}
my $tag_get = qr{^GET /v2/library/cold/manifests/fresh };
my $tag_head = qr{^HEAD /v2/library/cold/manifests/fresh };

$r = http_get($port_short, '/v2/library/cold/manifests/fresh',
              headers => \@all);
my $filled = time;
is($r->{status}, 200, 'tag served');
my $cold_mdig = $r->{headers}{'docker-content-digest'}[0];
ok(cache_entries($cache)->{"* manifest $cold_mdig"},
   'tag manifest kept under its digest');
ok(!grep({ /fresh/ } keys %{ cache_entries($cache) }),
   '... and under no tag key');
is(eventually(sub { front_count($tag_head) }), 1,
   'the tag was checked with one HEAD upstream');
$r = http_get($port_short, '/v2/library/cold/manifests/fresh',
              headers => \@all);
is(status($r), 'HIT', 'tag within its validity: HIT');
is(front_count($tag_head), 1, '... no upstream request');

wait_until($filled + 2.1);
$r = http_get($port_short, '/v2/library/cold/manifests/fresh',
              method => 'HEAD', headers => \@all);
is($r->{status}, 200, 'HEAD on an expired tag');
is(status($r), 'REVALIDATED', '... checked and unchanged: REVALIDATED');
is($r->{headers}{'docker-content-digest'}[0], $cold_mdig, '... its digest');
is(at_least(2, sub { front_count($tag_head) }), 2,
   '... one HEAD upstream');
$r = http_get($port_short, '/v2/library/cold/manifests/fresh',
              headers => \@all);
is(status($r), 'HIT', 'GET after the check: fresh again, HIT');
is($r->{headers}{'docker-content-digest'}[0], $cold_mdig, '... its digest');
is(front_count($tag_head), 2, '... no further HEAD');
is(front_count($tag_get), 0, 'the tag was never fetched with a GET');

# --- the status header can be turned off; the log variable stays ---------

$r = http_get($port_quiet, "/v2/library/cold/blobs/$cold");
is($r->{status}, 200, 'quiet server serves');
ok(!$r->{headers}{'x-registry-cache'}, 'registry_cache_header off: none');
like((file_lines("$ng->{dir}/quiet.log"))[-1],
     qr{^HIT GET /v2/library/cold/blobs/}, 'log variable still says HIT');
like(join("\n", file_lines("$ng->{dir}/cache.log")),
     qr{^MISS GET /v2/library/a/blobs/.*\nHIT GET /v2/library/b/blobs/}m,
     '$registry_cache_status in the access log');

# --- hostile requests leave the cache as it was ----------------------------

my $snapshot = cache_entries($cache);
for my $req ("DELETE /v2/library/a/blobs/$layer", "PUT /v2/library/a/blobs/$layer",
             "GET /v2/library/a/blobs/\U$layer", "GET /v2/library/a/blobs/$layer%00",
             "GET /v2/library/a/blobs/$layer/..", "GET /v2/library/%2e%2e/blobs/$layer",
             "GET /v2/library/a/blobs/$layer?ns=evil.example",
             "GET /v2/library/a/manifests/1%2F..%2F..")
{
    http_raw($port, "$req HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             . "Connection: close\r\n\r\nabc");
}
is_deeply(cache_entries($cache), $snapshot,
          'hostile requests changed no cache file');
$r = get("/v2/library/a/blobs/$layer");
is(status($r), 'HIT', 'the blob is still served from the cache');
is('sha256:' . sha256_hex($r->{body}), $layer, '... intact');

done_testing();
