#!/usr/bin/perl

# What a client sends does not reach the upstream unless the protocol
# needs it: no cookies, forwarding headers, Accept-Encoding, X-* or body
# (a plain nginx in front of a real registry logs what arrives), and
# identity encoding always, so a compressing upstream cannot make one
# client's gzip answer another client's cached bytes.  Credentials the
# operator's auth_basic reads are the operator's: never forwarded, and
# such requests are cached as usual.  nginx's own 401/403 (auth_basic,
# deny) reach the client unchanged, not as upstream errors.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

my $d = test_dir();
my $reg = start_registry();
my $img = build_image(layers => [{ a => "client headers\n" x 100 }]);
push_image($img, $reg, 'team/app:1');

# the upstream compresses whatever it may, and logs what it was sent
my $fport = free_port();
my $front = start_nginx(plain => 1, ports => [$fport], http => <<"EOF");
    log_format seen '\$request|\$http_cookie|\$http_proxy_authorization|'
                    '\$http_x_forwarded_for|\$http_accept_encoding|'
                    '\$http_x_custom|\$content_length|\$http_user_agent|'
                    '\$http_authorization|\$http_range|\$request_length';
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/seen.log seen;
        gzip on;
        gzip_min_length 1;
        gzip_proxied any;
        gzip_types *;
        location / { proxy_pass $reg->{url}; }
    }
EOF
my $seen = "$front->{dir}/seen.log";

spew("$d/htpasswd", "alice:{PLAIN}wonderland\n");

my $port = free_port();
my $guarded = free_port();
my $denied = free_port();
my $lan = free_port();
my $ng = start_nginx(ports => [$port, $guarded, $denied, $lan],
                     http => <<"EOF");
    registry front.test http://127.0.0.1:$fport;
    server {
        listen 127.0.0.1:$port;
        registry_default front.test;
        include $ROOT/registry_params;
    }
    server {
        listen 127.0.0.1:$guarded;
        registry_default front.test;
        auth_basic "mirror";
        auth_basic_user_file $d/htpasswd;
        include $ROOT/registry_params;
    }
    server {
        listen 127.0.0.1:$denied;
        registry_default front.test;
        deny all;
        include $ROOT/registry_params;
    }
    # "LAN free, others with a password": auth_basic may not run at all
    server {
        listen 127.0.0.1:$lan;
        registry_default front.test;
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_basic "mirror";
        auth_basic_user_file $d/htpasswd;
        registry_client_credentials off;
        include $ROOT/registry_params;
    }
EOF

my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json');
my @noise = ('Cookie: session=client-a', 'Proxy-Authorization: Basic eDp5',
             'X-Forwarded-For: 10.1.2.3', 'Accept-Encoding: gzip, br',
             'X-Custom: 1', 'User-Agent: curious-client/1.0',
             'Range: bytes=0-3');

sub seen_lines { return file_lines($seen) }

# a tag manifest, asked with everything a client could add
my $r = http_get($port, '/v2/team/app/manifests/1', headers => [@oci, @noise]);
is($r->{status}, 200, 'manifest through the mirror');
my $m = eval { decode_json($r->{body}) };
ok($m && $m->{layers}, 'the client got the manifest itself, not gzip');
ok(!$r->{headers}{'content-encoding'}, 'no Content-Encoding to the client');
at_least(1, sub { scalar seen_lines() });
my @f = split /\|/, (seen_lines())[0], -1;
like($f[0], qr{^HEAD /v2/team/app/manifests/1 },
     'upstream got the request (the tag checked with a HEAD)');
is($f[1], '-', 'no Cookie upstream');
is($f[2], '-', 'no Proxy-Authorization upstream');
is($f[3], '-', 'no X-Forwarded-For upstream');
is($f[4], 'identity', 'Accept-Encoding: identity upstream');
is($f[5], '-', 'no X-* header upstream');
is($f[7], 'ngx_registry_module', "the mirror's User-Agent");
is($f[8], '-', 'no Authorization upstream (none needed)');
is($f[9], '-', 'no Range upstream');

# another client, plain: the same bytes, from the cache
my $r2 = http_get($port, '/v2/team/app/manifests/1', headers => \@oci);
is($r2->{headers}{'x-registry-cache'}[0], 'HIT', 'second client: a hit');
is($r2->{body}, $r->{body}, 'second client: the same (identity) bytes');

# a GET with a body: the body is dropped, never sent on
my $layer = $m->{layers}[0]{digest};
my $body = 'x' x 5000;
$r = http_raw($port, "GET /v2/team/app/blobs/$layer HTTP/1.1\r\n"
              . "Host: 127.0.0.1\r\nConnection: close\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n$body");
is($r->{status}, 200, 'GET with a body: the blob');
is('sha256:' . sha256_hex($r->{body}), $layer, 'blob bytes');
at_least(1, sub { scalar grep { m{/blobs/} } seen_lines() });
@f = split /\|/, (grep { m{/blobs/} } seen_lines())[0], -1;
like($f[0], qr{/blobs/\Q$layer\E }, 'the blob request upstream');
is($f[6], '-', 'no Content-Length upstream');
cmp_ok($f[10], '<', 1000, "no body upstream (request length $f[10])");

# --- the operator's auth_basic ---------------------------------------------

my $alice = 'Authorization: Basic ' . encode_base64('alice:wonderland', '');
my $before = scalar seen_lines();
$r = http_get($guarded, '/v2/team/app/manifests/1', headers => \@oci);
is($r->{status}, 401, "auth_basic: nginx's own 401 without credentials");
like(${ $r->{headers}{'www-authenticate'} // [''] }[0], qr/^Basic realm="mirror"/,
     "auth_basic: its challenge reaches the client");
is(scalar seen_lines(), $before, 'auth_basic refusal: nothing upstream');

$r = http_get($guarded, '/v2/team/app/blobs/' . $layer, headers => [$alice]);
is($r->{status}, 200, 'auth_basic: the blob with credentials');
is($r->{headers}{'x-registry-cache'}[0], 'HIT',
   "operator's credentials: served from the cache, not bypassed");

$r = http_get($guarded, '/v2/team/app/manifests/1',
              headers => [@oci, $alice, 'Cache-Control: no-cache']);
is($r->{status}, 200, 'auth_basic: the manifest with credentials');
is($r->{headers}{'x-registry-cache'}[0], 'HIT', 'tag manifest: a hit too');

# a blob the mirror has not seen: it goes upstream, without alice's login
$r = http_get($guarded, "/v2/team/app/blobs/$m->{config}{digest}",
              headers => [$alice]);
is($r->{status}, 200, 'auth_basic: a cold blob');
is($r->{headers}{'x-registry-cache'}[0], 'MISS', 'cold blob: a miss');
at_least($before + 1, sub { scalar seen_lines() });
@f = split /\|/, (seen_lines())[-1], -1;
like($f[0], qr{/blobs/\Q$m->{config}{digest}\E }, 'the cold blob upstream');
is($f[8], '-', "the operator's Basic credentials are not sent upstream");

# the mirror's own answers come after the operator's access control
$r = http_get($guarded, '/v2/');
is($r->{status}, 401, 'auth_basic: GET /v2/ is challenged, as registries do');
like(${ $r->{headers}{'www-authenticate'} // [''] }[0], qr/^Basic /,
     'GET /v2/: the Basic challenge');
$r = http_get($guarded, '/v2/', headers => [$alice]);
is($r->{status}, 200, 'GET /v2/ with credentials: 200');
is($r->{body}, "{}\n", 'GET /v2/ with credentials: {}');
$r = http_get($guarded, '/v2/other.example/app/manifests/1');
is($r->{status}, 401, 'auth_basic: no registry names learned without '
   . 'credentials');
$r = http_get($guarded, '/v2/other.example/app/manifests/1',
              headers => [$alice]);
is($r->{status}, 404, 'with credentials: NAME_UNKNOWN');
is(eval { $r->{json}{errors}[0]{code} }, 'NAME_UNKNOWN', '... OCI body');

# satisfy any: allowed by address, auth_basic never read the credentials;
# registry_client_credentials off keeps them at the mirror all the same
$before = scalar seen_lines();
$r = http_get($lan, "/v2/team/app/blobs/$layer",
              headers => [$alice, 'Cache-Control: no-cache']);
is($r->{status}, 200, 'satisfy any: the blob');
is($r->{headers}{'x-registry-cache'}[0], 'HIT',
   "registry_client_credentials off: the cache serves it");
$r = http_get($lan, '/v2/team/app/tags/list', headers => [$alice]);
is($r->{status}, 200, 'satisfy any: tags list upstream');
at_least($before + 1, sub { scalar seen_lines() });
@f = split /\|/, (seen_lines())[-1], -1;
like($f[0], qr{/tags/list }, 'the tags list went upstream');
is($f[8], '-', 'registry_client_credentials off: no credentials upstream');

# what nginx refuses itself gets OCI bodies in every location
for my $case (
    ['a GET with a body over client_max_body_size', 413,
     "GET /v2/team/app/manifests/1 HTTP/1.1\r\nHost: x\r\n"
     . "Content-Length: 2000000\r\nConnection: close\r\n\r\n"],
    ['a broken chunked body', 400,
     "GET /v2/team/app/manifests/1 HTTP/1.1\r\nHost: x\r\n"
     . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n"],
    ['an unknown transfer coding', 501,
     "GET /v2/team/app/manifests/1 HTTP/1.1\r\nHost: x\r\n"
     . "Transfer-Encoding: gzip\r\nConnection: close\r\n\r\n"],
    ['HTTP/2.0 on the request line', 505,
     "GET /v2/team/app/manifests/1 HTTP/2.0\r\nHost: x\r\n"
     . "Connection: close\r\n\r\n"],
) {
    my ($what, $status, $req) = @$case;
    $r = http_raw($port, $req);
    is($r->{status}, $status, "$what: $status");
    ok(eval { $r->{json}{errors}[0]{code} }, "$what: an OCI body")
        or diag($r->{raw});
}

# --- nginx's own 403 ---------------------------------------------------------

$before = scalar seen_lines();
$r = http_get($denied, '/v2/team/app/manifests/1', headers => \@oci);
is($r->{status}, 403, "deny all: nginx's own 403, not an upstream 401");
ok(!$r->{headers}{'www-authenticate'}, 'deny all: no challenge');
is(scalar seen_lines(), $before, 'deny all: nothing upstream');

# --- the client's own bearer token: forwarded, never cached ------------------

$r = http_get($port, "/v2/team/app/blobs/$layer",
              headers => ['Authorization: Bearer client-token']);
is($r->{status}, 200, "client's own token: the blob");
is($r->{headers}{'x-registry-cache'}[0], 'BYPASS', "client's own token: "
   . 'not from the cache');
at_least($before + 1, sub { scalar seen_lines() });
@f = split /\|/, (seen_lines())[-1], -1;
is($f[8], 'Bearer client-token', "the client's own token goes upstream");

done_testing();
