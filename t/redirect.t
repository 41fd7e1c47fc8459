#!/usr/bin/perl

# Upstream redirects: a blob the registry redirects to a CDN (a TLS host
# on another loopback port, found through a test DNS server) is fetched by
# the mirror itself, cached under its digest and verified; the client never
# sees the redirect and the CDN never sees the upstream's Authorization.
# Targets are checked on the address they resolve to: http, loopback
# however spelled (a name, 127.0.0.1, 0.0.0.0, 2130706433,
# [::ffff:127.0.0.1]) and the other special ranges (NAT64 and 6to4 on the
# IPv4 address they embed, IPv4-translated, Teredo, benchmarking,
# documentation) are refused unless registry_redirect_allow names the
# range, at every hop of a bounded chain.  Relative Locations are made
# absolute against the URL that got them.  A chain with a token retry
# ends in an OCI error however long it is, never in nginx's own page.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use RegistryTest;

my $reg = start_registry();
my $noise = join '', map { Digest::SHA::sha256("cdn $_") } 1 .. 20000;
my $img = build_image(layers => [{ cdn => $noise }]);
push_image($img, $reg, 'ok/app:1');
my $m = decode_json(http_get($reg->{port}, '/v2/ok/app/manifests/1',
    headers => ['Accept: application/vnd.oci.image.manifest.v1+json'])->{body});
my $blob = $m->{layers}[0]{digest};
push_image(build_image(layers => [{ other => "other\n" }]), $reg, 'ok/other:1');
my $other_blob = decode_json(http_get($reg->{port}, '/v2/ok/other/manifests/1',
    headers => ['Accept: application/vnd.oci.image.manifest.v1+json'])
    ->{body})->{layers}[0]{digest};

# DNS: cdn.test is 127.0.0.1
my $dport = start_dns('cdn.test' => '127.0.0.1');

# the CDN: TLS, serves the registry's blob files by digest
my $ca = make_ca();
my $cert = make_cert($ca, 'cdn.test');
my $cport = free_port();
my $data = "$reg->{dir}/data/docker/registry/v2/blobs/sha256";
my $cdn = start_nginx(plain => 1, ports => [$cport], http => <<"EOF");
    log_format cdn '\$request "\$http_host" "\$ssl_server_name" '
                   '"\$http_authorization"';
    server {
        listen 127.0.0.1:$cport ssl;
        ssl_certificate $cert->[0];
        ssl_certificate_key $cert->[1];
        access_log \@DIR\@/cdn.log cdn;
        location ~ "^/blobs/sha256:(..)(.{62})\$" {
            alias $data/\$1/\$1\$2/data;
        }
        location ~ "^/manifests/sha256:(..)(.{62})\$" {
            default_type application/vnd.oci.image.manifest.v1+json;
            alias $data/\$1/\$1\$2/data;
        }
        location = /loop { return 307 https://cdn.test:$cport/loop; }
        location = /hop { return 307 https://127.0.0.2:$cport/x; }

        # relative Locations: a path with dot segments, an absolute path,
        # scheme-relative ones
        absolute_redirect off;
        location ~ "^/a/b/(sha256:[0-9a-f]+)\$" { return 307 ../c/\$1; }
        location ~ "^/a/c/(sha256:[0-9a-f]+)\$" { return 307 /blobs/\$1; }
        location ~ "^/s/(sha256:[0-9a-f]+)\$" {
            return 307 //cdn.test:$cport/blobs/\$1;
        }
        location ~ "^/r/(sha256:[0-9a-f]+)\$" {
            return 307 //127.0.0.2:$cport/blobs/\$1;
        }
    }
EOF
my $cdn_log = "$cdn->{dir}/cdn.log";

# special addresses, as literals in Location
my %literal = (
    nat64 => '[64:ff9b::7f00:1]',           nat64p => '[64:ff9b::10.1.2.3]',
    translated => '[::ffff:0:7f00:1]',      mappedp => '[::ffff:10.1.2.3]',
    sixto4 => '[2002:7f00:1::1]',           sixto4p => '[2002:a01:203::1]',
    teredo => '[2001:0:4136:e378:8000:63bf:3fff:fdd2]',
    discard => '[100::1]',                  bench => '198.18.0.1',
    bench2 => '198.19.255.254',             doc1 => '192.0.2.1',
    doc2 => '198.51.100.7',                 doc3 => '203.0.113.9',
);
my $literals = join '', map {
    "        location ~ \"^/v2/lit-$_/\" "
    . "{ return 307 https://$literal{$_}:$cport/x; }\n" } sort keys %literal;

# the registry, behind a front that redirects blobs as S3 and Docker Hub do
my $fport = free_port();
my $front = start_nginx(plain => 1, ports => [$fport], http => <<"EOF");
    log_format front '\$request "\$http_authorization"';
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/front.log front;
$literals
        location ~ "^/v2/rel/.*/blobs/(sha256:[0-9a-f]+)\$" {
            return 307 https://cdn.test:$cport/a/b/\$1;
        }
        location ~ "^/v2/schemerel/.*/blobs/(sha256:[0-9a-f]+)\$" {
            return 307 https://cdn.test:$cport/s/\$1;
        }
        location ~ "^/v2/relbad/.*/blobs/(sha256:[0-9a-f]+)\$" {
            return 307 https://cdn.test:$cport/r/\$1;
        }
        location ~ "^/v2/relfront/.*/blobs/(sha256:[0-9a-f]+)\$" {
            return 307 ../../../ok/app/blobs/\$1;
        }

        # token auth on the registry's origin, then an endless chain
        default_type application/json;
        location = /token {
            return 200 '{"token":"loop-token","expires_in":300}';
        }
        location ~ "^/v2/authloop/" {
            if (\$http_authorization != "Bearer loop-token") {
                add_header WWW-Authenticate
                   'Bearer realm="http://127.0.0.1:$fport/token",service="x"'
                   always;
                return 401 '{"errors":[{"code":"UNAUTHORIZED"}]}';
            }
            return 307 https://cdn.test:$cport/loop;
        }
        location ~ "^/v2/ok/.*/blobs/(sha256:[0-9a-f]+)\$" {
            return 307 https://cdn.test:$cport/blobs/\$1;
        }
        location ~ "^/v2/http/" { return 307 http://cdn.test:$cport/blobs/x; }
        location ~ "^/v2/ip/" { return 307 https://127.0.0.1:$cport/x; }
        location ~ "^/v2/zero/" { return 307 https://0.0.0.0:$cport/x; }
        location ~ "^/v2/decimal/" { return 307 https://2130706433:$cport/x; }
        location ~ "^/v2/mapped/" {
            return 307 https://[::ffff:127.0.0.1]:$cport/x;
        }
        location ~ "^/v2/loop/" { return 307 https://cdn.test:$cport/loop; }
        location ~ "^/v2/hop/" { return 307 https://cdn.test:$cport/hop; }
        location ~ "^/v2/ok/.*/manifests/(sha256:[0-9a-f]+)\$" {
            return 307 https://cdn.test:$cport/manifests/\$1;
        }
        location ~ "^/v2/forbidden/" { return 403 "no"; }
        location ~ "^/v2/bad/.*/blobs/(sha256:[0-9a-f]+)\$" {
            return 307 https://cdn.test:$cport/blobs/$other_blob;
        }
        location / { proxy_pass $reg->{url}; }
    }
EOF

my $mirror = <<"EOF";
    resolver 127.0.0.1:$dport valid=30s ipv6=off;
    registry docker.io http://127.0.0.1:$fport;
    server {
        listen 127.0.0.1:\@PORT\@;
        registry_default docker.io;
        \@ALLOW\@
        include $ROOT/registry_params;
    }
EOF
my $ca_bundle = slurp($SYSTEM_CA) . slurp($ca->{crt});

my $port = free_port();
(my $allowed = $mirror) =~ s/\@PORT\@/$port/;
$allowed =~ s/\@ALLOW\@/registry_redirect_allow 127.0.0.1\/32;/;
my $ng = start_nginx(ports => [$port], http => $allowed, ca => $ca_bundle);

my $strict_port = free_port();
(my $strict = $mirror) =~ s/\@PORT\@/$strict_port/;
$strict =~ s/\@ALLOW\@//;
my $ng_strict = start_nginx(ports => [$strict_port], http => $strict,
                            ca => $ca_bundle);

my $http_port = free_port();
(my $http = $mirror) =~ s/\@PORT\@/$http_port/;
$http =~ s/\@ALLOW\@/registry_redirect_allow 127.0.0.1\/32; registry_redirect_http on;/;
my $ng_http = start_nginx(ports => [$http_port], http => $http,
                          ca => $ca_bundle);

# --- followed, cached, verified ----------------------------------------------

my $r = http_get($port, "/v2/ok/app/blobs/$blob");
is($r->{status}, 200, 'redirected blob: 200, the redirect not shown');
is('sha256:' . sha256_hex($r->{body}), $blob, '... the right bytes');
is($r->{headers}{'x-registry-cache'}[0], 'MISS', '... filled');
ok(eventually(sub { grep { m{^GET /blobs/\Q$blob\E HTTP/1\.1 "cdn\.test:$cport" "cdn\.test" "-"$} }
                   file_lines($cdn_log) }),
   'the CDN was asked with its own Host and SNI, no Authorization');

$r = http_get($port, "/v2/other/repo/blobs/$blob");
is($r->{headers}{'x-registry-cache'}[0], 'HIT',
   'cached under the digest: HIT through another repository');
is('sha256:' . sha256_hex($r->{body}), $blob, '... the right bytes');

# a client's own credentials reach the registry, never the CDN
$r = http_get($port, "/v2/ok/app/blobs/$blob",
              headers => ['Authorization: Bearer client-token']);
is($r->{status}, 200, 'with client credentials: 200');
ok(eventually(sub { grep { /"Bearer client-token"$/ }
                   file_lines("$front->{dir}/front.log") }),
   'the registry got the client credentials');
is(at_least(2, sub { scalar grep { m{^GET /blobs/\Q$blob\E } }
                        file_lines($cdn_log) }),
   2, 'the CDN was asked again');
is(scalar(grep { /client-token/ } file_lines($cdn_log)), 0,
   '... without the client credentials');

# manifests by digest follow redirects too, and are verified
my $mdig = upstream_digest($reg, 'ok/app', '1');
$r = http_get($port, "/v2/ok/app/manifests/$mdig",
              headers => ['Accept: application/vnd.oci.image.manifest.v1+json']);
is($r->{status}, 200, 'redirected manifest by digest: 200');
is('sha256:' . sha256_hex($r->{body}), $mdig, '... the right bytes');
ok(eventually(sub { grep { m{^GET /manifests/\Q$mdig\E } }
                   file_lines($cdn_log) }),
   '... from the CDN (which names its media type)');

# an upstream 403 becomes an OCI DENIED
$r = http_get($port, "/v2/forbidden/app/blobs/sha256:" . ("e" x 64));
is($r->{status}, 403, 'upstream 403: 403');
is(eval { $r->{json}{errors}[0]{code} }, 'DENIED', '... DENIED');

# --- refused targets -------------------------------------------------------------

# (a digest nothing cached, so that the upstream is asked)
my $cold = 'sha256:' . ('c' x 64);
my $seen = scalar file_lines($cdn_log);
$r = http_get($port, "/v2/http/app/blobs/$cold");
is($r->{status}, 502, 'redirect to http: refused (502)');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');

for my $repo ('ok', 'ip', 'zero', 'decimal', 'mapped') {
    $r = http_get($strict_port, "/v2/$repo/app/blobs/$blob");
    is($r->{status}, 502, "loopback not allowed, $repo target: refused");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
}
like(slurp($ng_strict->{error_log}),
     qr/redirect to "cdn\.test" refused: it is 127\.0\.0\.1:$cport/,
     'the error log says which address was refused');
is(scalar file_lines($cdn_log), $seen, 'the CDN saw none of them');

# the special ranges, as address literals
$seen = scalar file_lines($cdn_log);
for my $repo (sort keys %literal) {
    $r = http_get($strict_port, "/v2/lit-$repo/app/blobs/$cold");
    is($r->{status}, 502, "$literal{$repo}: refused (502)");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
    like(slurp($ng_strict->{error_log}),
         qr/redirect to "\Q$literal{$repo}\E" refused: it is /,
         '... for its address');
}
is(scalar file_lines($cdn_log), $seen, 'the CDN saw none of them');

# a chain is checked at every hop: cdn.test (127.0.0.1, allowed) sends
# on to 127.0.0.2, which is not
$seen = scalar file_lines($cdn_log);
$r = http_get($port, "/v2/hop/app/blobs/$cold");
is($r->{status}, 502, 'second hop to a refused address: 502');
like(slurp($ng->{error_log}), qr/refused: it is 127\.0\.0\.2:$cport/,
     '... refused at the second hop');
is(scalar(grep { m{^GET /x } } file_lines($cdn_log)), 0,
   '... which was never contacted');

# the redirected bytes are verified like any fill
my $wanted = 'sha256:' . ('d' x 64);
my $cdn_other = sub { scalar grep { m{^GET /blobs/\Q$other_blob\E } }
                                  file_lines($cdn_log) };
my $bad_seen = $cdn_other->();
$r = http_get($port, "/v2/bad/app/blobs/$wanted");
isnt('sha256:' . sha256_hex($r->{body}), $other_blob,
     'a CDN answering other bytes: the client does not get them whole');
like(slurp($ng->{error_log}), qr/digest mismatch .* expected \Q$wanted\E/,
     '... the mismatch is logged');
ok(!grep({ /\Q$wanted\E/ } keys %{ cache_entries("$ng->{dir}/cache") }),
   '... nothing cached');

# --- relative Locations ---------------------------------------------------

# (blobs that mirror has not cached yet)
# (the CDN's line for the bad request above can land after our client
# is done: waited for, so that it is not counted below)
my $other_seen = at_least($bad_seen + 1, $cdn_other);
$r = http_get($port, "/v2/rel/app/blobs/$other_blob");
is($r->{status}, 200, 'relative Locations followed: 200');
is($r->{headers}{'x-registry-cache'}[0], 'MISS', '... filled');
is('sha256:' . sha256_hex($r->{body}), $other_blob, '... the right bytes');
is(at_least($other_seen + 1, sub { scalar grep { m{^GET /blobs/\Q$other_blob\E } }
                                       file_lines($cdn_log) }),
   $other_seen + 1,
   '... "../c/<digest>" from /a/b/, then "/blobs/<digest>" from /a/c/');
ok((grep { m{^GET /a/c/\Q$other_blob\E } } file_lines($cdn_log)),
   '... by way of /a/c/');

$r = http_get($http_port, "/v2/schemerel/app/blobs/$blob");
is($r->{status}, 200, 'a scheme-relative Location followed: 200');
is($r->{headers}{'x-registry-cache'}[0], 'MISS', '... filled');
is('sha256:' . sha256_hex($r->{body}), $blob, '... the right bytes');

$r = http_get($http_port, "/v2/relfront/app/blobs/$other_blob");
is($r->{status}, 200,
   'a relative Location against the registry URL and path: 200');
is($r->{headers}{'x-registry-cache'}[0], 'MISS', '... filled');
is('sha256:' . sha256_hex($r->{body}), $other_blob, '... the right bytes');
ok(eventually(sub { grep { m{^GET /v2/ok/app/blobs/\Q$other_blob\E } }
                   file_lines("$front->{dir}/front.log") }),
   '... "../../../ok/app/blobs/<digest>" from /v2/relfront/app/blobs/');

$seen = scalar file_lines($cdn_log);
$r = http_get($port, "/v2/relbad/app/blobs/$cold");
is($r->{status}, 502, 'a relative Location to a refused address: 502');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
like(slurp($ng->{error_log}),
     qr/redirect to "127\.0\.0\.2" refused: it is 127\.0\.0\.2:$cport/,
     '... refused for its address');
my @cdn = file_lines($cdn_log);
is(scalar(grep { m{^GET /blobs/} } @cdn[$seen .. $#cdn]), 0,
   '... which was never contacted');
$r = http_get($strict_port, "/v2/relfront/app/blobs/$cold");
is($r->{status}, 502, 'a relative Location to the http registry, strict: 502');

# skopeo through the mirror: manifest from the registry, blob via the CDN
my $log = run_out('skopeo', '--insecure-policy', 'copy',
                  '--src-tls-verify=false',
                  "docker://127.0.0.1:$port/docker.io/ok/app:1",
                  'dir:' . test_dir() . '/pull');
is($?, 0, 'skopeo pull with the blob behind a redirect') or diag $log;

# --- a bounded chain -----------------------------------------------------------------

$r = http_get($port, "/v2/loop/app/blobs/$cold");
is($r->{status}, 502, 'endless redirects: 502');
like(slurp($ng->{error_log}), qr/too many redirects/, '... too many');
my $loops = grep { m{^GET /loop } } file_lines($cdn_log);
ok($loops >= 1 && $loops <= 5, "... after $loops hops on the CDN");

# a token retry, then an endless chain: nginx's internal redirects run
# short before the hops do
$r = http_get($port, "/v2/authloop/app/blobs/$cold");
is($r->{status}, 502, 'token retry and endless redirects: 502');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... an OCI body');
like($r->{headers}{'content-type'}[0], qr{^application/json},
     '... JSON, not nginx\'s own page');
ok(eventually(sub { grep { m{^GET /v2/authloop/\S+ \S+ "Bearer loop-token"$} }
                   file_lines("$front->{dir}/front.log") }),
   '... after the retry with the token');

done_testing();
