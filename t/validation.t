#!/usr/bin/perl

# Validation before anything goes upstream: names, tags and digests follow
# the distribution grammar on the raw request bytes; pushes, deletes and the
# catalog are refused; requests nginx's core refuses still get OCI bodies;
# GET /v2/ is answered by the mirror.  The upstream sees none of it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use RegistryTest;

my $reg = start_registry();
my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    log_format up '\$upstream_addr "\$request" \$status';
    access_log \@DIR\@/up.log up;
    registry docker.io $reg->{url};
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF

my $hex = 'a' x 64;
my $name = 'docker.io/library/app';

# [request path, status, OCI code]; sent byte for byte as GET
my @cases = (
    ["/v2/$name/../x/manifests/latest",          400, 'NAME_INVALID'],
    ["/v2/$name/%2e%2e/manifests/latest",        400, 'NAME_INVALID'],
    ["/v2/docker.io/%2e%2e/%2e%2e/manifests/x",  400, 'NAME_INVALID'],
    ['/v2/../../../etc/passwd',                  400, 'NAME_INVALID'],
    ["/v2/docker.io/library%2Fapp/manifests/1",  400, 'NAME_INVALID'],
    ["/v2/docker.io/library%252Fapp/manifests/1", 400, 'NAME_INVALID'],
    ["/v2/docker.io/..%2F..%2Fetc/manifests/1",  400, 'NAME_INVALID'],
    ["/v2/$name%00/manifests/latest",            400, 'NAME_INVALID'],
    ["/v2/$name/manifests/latest%00",            400, 'NAME_INVALID'],
    ["/v2/docker.io//library/app/manifests/1",   400, 'NAME_INVALID'],
    ["/v2/docker.io/library\\app/manifests/1",   400, 'NAME_INVALID'],
    ["/v2/docker.io/Library/App/manifests/1",    400, 'NAME_INVALID'],
    ["/v2/docker.io/library/app-/manifests/1",   400, 'NAME_INVALID'],
    ["/v2/docker.io/library/a___b/manifests/1",  400, 'NAME_INVALID'],
    ["/v2/docker.io/library/.app/manifests/1",   400, 'NAME_INVALID'],
    ["/v2/docker.io/library/app/manifests/",     400, 'TAG_INVALID'],
    ["/v2/docker.io/" . ('a' x 256) . "/manifests/1", 400, 'NAME_INVALID'],
    ["/v2/docker.io/" . join('/', ('ab') x 86) . "/manifests/1",
                                                 400, 'NAME_INVALID'],
    ["/v2/docker.io/" . ('a/' x 200) . "b/manifests/1", 400, 'NAME_INVALID'],
    ["/v2/$name/manifests/" . ('t' x 129),       400, 'TAG_INVALID'],
    ["/v2/$name/manifests/..",                   400, 'TAG_INVALID'],
    ["/v2/$name/manifests/%2e%2e",               400, 'TAG_INVALID'],
    ["/v2/$name/manifests/.hidden",              400, 'TAG_INVALID'],
    ["/v2/$name/manifests/-dash",                400, 'TAG_INVALID'],
    ["/v2/$name/manifests/a%2Fb",                400, 'TAG_INVALID'],
    ["/v2/$name/manifests/sha256:" . ('g' x 64), 400, 'DIGEST_INVALID'],
    ["/v2/$name/manifests/sha256:" . ('A' x 64), 400, 'DIGEST_INVALID'],
    ["/v2/$name/manifests/sha256:abcd",          400, 'DIGEST_INVALID'],
    ["/v2/$name/manifests/sha256:${hex}a",       400, 'DIGEST_INVALID'],
    ["/v2/$name/manifests/md5:" . ('a' x 32),    400, 'DIGEST_INVALID'],
    ["/v2/$name/manifests/sha384:" . ('a' x 96), 400, 'DIGEST_INVALID'],
    ["/v2/$name/blobs/latest",                   400, 'DIGEST_INVALID'],
    ["/v2/$name/blobs/sha256:",                  400, 'DIGEST_INVALID'],
    ["/v2/$name/blobs/sha256:$hex%00",           400, 'NAME_INVALID'],
    ["/v2/$name/blobs/sha256%3A$hex",            400, 'DIGEST_INVALID'],
    ["/v2/$name/referrers/latest",               400, 'DIGEST_INVALID'],
    ["/v2/$name/manifests/1?ns=evil%2F..",       400, 'NAME_INVALID'],
    ["/v2/$name/manifests/1?ns=a..b",            400, 'NAME_INVALID'],
    ["/v2/$name/tags/list?n=abc",                400,
                                         'PAGINATION_NUMBER_INVALID'],
    ["/v2/$name/tags/list?last=..%2F",           400, 'TAG_INVALID'],
    ['/v2/_catalog',                             404, 'UNSUPPORTED'],
    ['/v2/docker.io/_catalog',                   404, 'UNSUPPORTED'],
    ["/v2/$name/blobs/uploads/",                 405, 'UNSUPPORTED'],
    ["/v2/$name/blobs/uploads/1234",             405, 'UNSUPPORTED'],
    ["/v2/$name",                                404, 'UNSUPPORTED'],
    ['/v3/',                                     404, 'UNSUPPORTED'],
    ['/',                                        404, 'UNSUPPORTED'],
    ['/v2x/app/manifests/1',                     404, 'UNSUPPORTED'],
);

sub check {
    my ($what, $r, $status, $code) = @_;
    is($r->{status}, $status, "$what: $status");
    like(($r->{headers}{'content-type'} // [''])->[0],
         qr{^application/json}, "$what: JSON");
    is(eval { $r->{json}{errors}[0]{code} } // '', $code, "$what: $code");
}

for my $c (@cases) {
    my ($path, $status, $code) = @$c;
    my $label = length $path > 70 ? substr($path, 0, 67) . '...' : $path;
    check($label, http_get($port, $path), $status, $code);
}

# pushes and deletes, with and without a body
for my $m ('PUT', 'POST', 'PATCH', 'DELETE') {
    for my $path ("/v2/$name/manifests/latest", "/v2/$name/blobs/uploads/",
                  "/v2/$name/blobs/sha256:$hex")
    {
        my $r = http_raw($port, "$m $path HTTP/1.1\r\nHost: x\r\n"
                         . "Content-Length: 5\r\nConnection: close\r\n\r\n"
                         . "hello");
        check("$m $path", $r, 405, 'UNSUPPORTED');
        is(($r->{headers}{allow} // [''])->[0], 'GET, HEAD', "$m: Allow");
    }
}

# requests nginx's core refuses before any module runs
my @core = (
    ["TRACE /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", 405, 'UNSUPPORTED'],
    ["GET /v2/ HTTP/1.1\r\nHost: ../x\r\n\r\n", 400, 'NAME_INVALID'],
    ["\x16\x03\x01\x00\xde\x01\x00\r\n\r\n", 400, 'NAME_INVALID'],
    ["GET /v2/\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, 'NAME_INVALID'],
    ["GET /v2/ HTTP/1.1\r\nHost: x\r\nX: " . ('y' x 70000) . "\r\n\r\n",
     400, 'NAME_INVALID'],
    ["GET /v2/" . ('a' x 9000) . " HTTP/1.1\r\nHost: x\r\n\r\n",
     414, 'NAME_INVALID'],
);
for my $c (@core) {
    my ($bytes, $status, $code) = @$c;
    (my $label = substr($bytes, 0, 24)) =~ s/[^\x20-\x7e]/./g;
    check("core: $label", http_raw($port, $bytes), $status, $code);
}

# the base endpoint is the mirror's own
my $r = http_get($port, '/v2/');
is($r->{status}, 200, 'GET /v2/: 200');
is($r->{headers}{'docker-distribution-api-version'}[0], 'registry/2.0',
   'GET /v2/: API version header');
is_deeply($r->{json}, {}, 'GET /v2/: {}');
$r = http_get($port, '/v2', method => 'HEAD');
is($r->{status}, 200, 'HEAD /v2: 200');
is($r->{body}, '', 'HEAD /v2: no body');

# none of the above reached the upstream
my @seen = registry_requests($reg);
is(scalar @seen, 0, 'the upstream saw no request')
    or diag explain \@seen;
my @contacted = grep { !/^- / } file_lines("$ng->{dir}/up.log");
is(scalar @contacted, 0, 'nginx contacted no upstream') or diag explain \@contacted;

# the limits are where the grammar puts them: these do go upstream
my $long = join('/', ('a' x 127) x 2);     # 255 bytes
for my $path ("/v2/docker.io/$long/manifests/" . ('t' x 128),
              "/v2/$name/manifests/sha512:" . ('b' x 128),
              "/v2/$name/tags/list?n=10&last=v1.0&junk=%00",
              "/v2/$name/referrers/sha256:$hex?artifactType="
              . 'application%2Fvnd.example%2Bjson')
{
    $r = http_get($port, $path);
    isnt($r->{status}, 400, 'valid, passed on: ' . substr($path, 0, 50));
}
@seen = registry_requests($reg);
is(scalar @seen, 4, 'the upstream saw the four valid requests');
like($seen[2], qr{^GET /v2/library/app/tags/list\?n=10&last=v1\.0$},
     'only known arguments are passed on');
like($seen[3], qr{\?artifactType=application%2Fvnd\.example%2Bjson$},
     'artifactType passed on');

# the workers survived all of it
like(slurp($ng->{error_log}), qr/start worker process/, 'error log read');
unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]|\[emerg\]/,
       'no worker crashed');

done_testing();
