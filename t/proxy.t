#!/usr/bin/perl

# The proxying itself: manifests (GET, HEAD, by tag and by digest), blobs
# (GET, HEAD, Range), tags list and referrers reach the right upstream and
# come back whole; skopeo pulls a multi-layer image through the mirror by
# path prefix and by host alias; requests shaped as containerd and the
# docker daemon send them get the upstream's digest; the access log shows
# every request served.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use RegistryTest;

my $reg = start_registry();
# incompressible, so the big layer stays big after gzip
my $noise = join '', map { Digest::SHA::sha256("noise $_") } 1 .. 65536;
my $img = build_image(layers => [{ one => "first layer\n" },
                                 { two => $noise },
                                 { three => join('', map { chr } 0 .. 255) }]);
push_image($img, $reg, 'library/multi:v1');
push_image($img, $reg, 'library/multi:v2');

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json',
              'Accept: application/vnd.docker.distribution.manifest.v2+json');
my $direct = http_get($reg->{port}, '/v2/library/multi/manifests/v1',
                      headers => \@accept);
my $digest = $direct->{headers}{'docker-content-digest'}[0];
my $manifest = decode_json($direct->{body});
my @layers = map { $_->{digest} } @{ $manifest->{layers} };
is(scalar @layers, 3, 'test image has three layers');

my $port = free_port();
my $ng = start_nginx(ports => [$port, "127.0.0.2:$port"], http => <<"EOF");
    registry docker.io $reg->{url};
    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.2:$port;
        registry_default docker.io;
        registry_alias 127.0.0.2 docker.io;
        include $ROOT/registry_params;
    }
EOF

my $base = '/v2/docker.io/library/multi';
my $sent = 0;
sub get { $sent++; return http_get($port, @_) }

# manifests
my $r = get("$base/manifests/v1", headers => \@accept);
is($r->{status}, 200, 'manifest GET by tag');
is($r->{body}, $direct->{body}, 'manifest bytes as upstream sent them');
is('sha256:' . sha256_hex($r->{body}), $digest, 'manifest hashes to digest');

$r = get("$base/manifests/v1", method => 'HEAD', headers => \@accept);
is($r->{status}, 200, 'manifest HEAD');
is($r->{headers}{'docker-content-digest'}[0], $digest, 'HEAD digest');
is($r->{headers}{'content-length'}[0], length $direct->{body},
   'HEAD length');
is($r->{body}, '', 'HEAD has no body');

$r = get("$base/manifests/$digest", headers => \@accept);
is($r->{status}, 200, 'manifest GET by digest');
is('sha256:' . sha256_hex($r->{body}), $digest, 'by-digest bytes');

$r = get("$base/manifests/nope", headers => \@accept);
is($r->{status}, 404, 'unknown tag: upstream 404 passed on');
is($r->{json}{errors}[0]{code}, 'MANIFEST_UNKNOWN', 'upstream OCI body');

# blobs
for my $l (@layers) {
    $r = get("$base/blobs/$l");
    is($r->{status}, 200, "blob GET $l");
    is('sha256:' . sha256_hex($r->{body}), $l, 'blob bytes hash to digest');
}
my $big = $layers[1];
my $whole = get("$base/blobs/$big")->{body};

$r = get("$base/blobs/$big", method => 'HEAD');
is($r->{status}, 200, 'blob HEAD');
is($r->{headers}{'content-length'}[0], length $whole, 'blob HEAD length');
is($r->{body}, '', 'blob HEAD has no body');

$r = get("$base/blobs/$big", headers => ['Range: bytes=100-1123']);
is($r->{status}, 206, 'blob Range: 206');
is($r->{body}, substr($whole, 100, 1024), 'blob Range: the right bytes');
like($r->{headers}{'content-range'}[0], qr{^bytes 100-1123/\d+$},
     'Content-Range');

$r = get("$base/blobs/sha256:" . ('0' x 64));
is($r->{status}, 404, 'unknown blob: 404');
is($r->{json}{errors}[0]{code}, 'BLOB_UNKNOWN', 'unknown blob: BLOB_UNKNOWN');

# tags list, with pagination passed on
$r = get("$base/tags/list");
is_deeply($r->{json}, { name => 'library/multi', tags => ['v1', 'v2'] },
          'tags list');
$r = get("$base/tags/list?n=1&last=v1");
is($r->{body}, http_get($reg->{port},
                        '/v2/library/multi/tags/list?n=1&last=v1')->{body},
   'paginated tags list as the upstream answers it');
is(at_least(2, sub { scalar grep {
           $_ eq 'GET /v2/library/multi/tags/list?n=1&last=v1' }
           registry_requests($reg) }), 2, 'pagination passed on');

# referrers: distribution 2.8 has no such API (a plain-text 404); the
# mirror must pass the request on and its status back, with an OCI body
my $rpath = "/v2/library/multi/referrers/$digest";
my $rdirect = http_get($reg->{port}, $rpath);
$r = get("$base/referrers/$digest");
is($r->{status}, $rdirect->{status}, 'referrers: upstream status (404)');
is(eval { $r->{json}{errors}[0]{code} }, 'MANIFEST_UNKNOWN',
   'referrers: an OCI body for it');
is(at_least(2, sub { scalar grep { $_ eq "GET $rpath" }
                        registry_requests($reg) }),
   2, 'referrers request reached the upstream');

# containerd: HEAD by tag with ?ns=, one Accept line, then GET by digest
my $ctrd = 'application/vnd.docker.distribution.manifest.v2+json, '
         . 'application/vnd.docker.distribution.manifest.list.v2+json, '
         . 'application/vnd.oci.image.manifest.v1+json, '
         . 'application/vnd.oci.image.index.v1+json, */*';
$r = get('/v2/library/multi/manifests/v1?ns=docker.io', method => 'HEAD',
         headers => ["Accept: $ctrd", 'User-Agent: containerd/v1.6.20']);
is($r->{status}, 200, 'containerd HEAD');
is($r->{headers}{'docker-content-digest'}[0], $digest, 'containerd digest');
is($r->{headers}{'oci-namespace'}[0], 'docker.io', 'containerd ns echoed');
$r = get("/v2/library/multi/manifests/$digest?ns=docker.io",
         headers => ["Accept: $ctrd"]);
is('sha256:' . sha256_hex($r->{body}), $digest, 'containerd GET by digest');

# docker daemon (registry-mirrors): bare host, one Accept line per type
$r = get('/v2/library/multi/manifests/v1',
         headers => ['User-Agent: docker/24.0.5 go/go1.20.6',
                     map { "Accept: $_" }
                     'application/vnd.docker.distribution.manifest.v2+json',
                     'application/vnd.docker.distribution.manifest.list.v2+json',
                     'application/vnd.oci.image.index.v1+json',
                     'application/vnd.oci.image.manifest.v1+json',
                     'application/vnd.docker.distribution.manifest.v1+prettyjws',
                     'application/json']);
is($r->{status}, 200, 'docker daemon GET');
is($r->{headers}{'docker-content-digest'}[0], $digest,
   'docker daemon digest');

# every request shows in the access log
my @log = file_lines($ng->{access_log});
is(scalar @log, $sent, "access log has all $sent requests");
ok((grep { m{"HEAD /v2/library/multi/manifests/v1\?ns=docker\.io HTTP} }
    @log), 'access log shows the containerd request');

# skopeo through the mirror, by path prefix and by host alias
for my $src ("127.0.0.1:$port/docker.io/library/multi:v1",
             "127.0.0.2:$port/library/multi:v1")
{
    my $out = test_dir() . "/pull-" . ($src =~ /^127\.0\.0\.2/ ? 2 : 1);
    my $log = run_out('skopeo', '--insecure-policy', 'copy',
                      '--src-tls-verify=false', "docker://$src", "dir:$out");
    is($?, 0, "skopeo copy $src") or diag $log;
    is('sha256:' . sha256_hex(slurp("$out/manifest.json")), $digest,
       'skopeo got the upstream manifest digest');
    for my $l (@layers) {
        (my $hex = $l) =~ s/^sha256://;
        is('sha256:' . sha256_hex(slurp("$out/$hex")), $l,
           "skopeo layer $hex");
    }
}
ok(eventually(sub { grep { /skopeo/ && m{"GET /v2/library/multi/blobs/} }
                   file_lines($ng->{access_log}) }),
   'alias pull logged under its own path');

done_testing();
