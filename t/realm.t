#!/usr/bin/perl

# Token realms: the realm of an upstream's challenge is the upstream's
# word.  On the registry's own origin (scheme, host and port) it is trusted
# as the registry is; anywhere else it is checked as a redirect target is:
# https unless registry_redirect_http, every address it resolves to outside
# the special ranges unless registry_redirect_allow names it, and fetched
# from the checked address with the realm's name as Host and TLS name.  A
# realm pointing back at the mirror costs one request (CDN-Loop), not a
# flood.  The upstream here is a plain nginx answering as a hostile
# registry would.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use RegistryTest;

# DNS: auth.test is 127.0.0.1
my $dport = start_dns('auth.test' => '127.0.0.1');

# a token service on another origin: TLS as auth.test, and plain http
my $ca = make_ca();
my $cert = make_cert($ca, 'auth.test');
my ($rport, $hport) = (free_port(), free_port());
my $realm = start_nginx(plain => 1, ports => [$rport, $hport], http => <<"EOF");
    log_format realm '\$server_port \$request "\$http_host" '
                     '"\$ssl_server_name" "\$http_cdn_loop"';
    server {
        listen 127.0.0.1:$rport ssl;
        listen 127.0.0.1:$hport;
        ssl_certificate $cert->[0];
        ssl_certificate_key $cert->[1];
        access_log \@DIR\@/realm.log realm;
        default_type application/json;
        location = /token {
            return 200 '{"token":"realm-token","expires_in":300}';
        }
    }
EOF
my $realm_log = "$realm->{dir}/realm.log";

# the mirror: one server strict, one allowing loopback over https, one
# allowing loopback over http as well
my ($sport, $aport, $oport) = (free_port(), free_port(), free_port());

# the upstream registry: a challenge for each kind of realm
my $fport = free_port();
my %realms = (
    same  => ["http://127.0.0.1:$fport/token", 'same-token'],
    other => ["http://127.0.0.1:$hport/token", 'realm-token'],
    tls   => ["https://auth.test:$rport/token", 'realm-token'],
    self  => ["http://127.0.0.1:$oport/v2/self/app/manifests/1", 'never'],
    nat64 => ["https://[64:ff9b::7f00:1]:$rport/token", 'realm-token'],
    frag  => ["http://127.0.0.1:$fport/token#.evil.test/steal", 'never'],
);
my $locations = join '', map { <<"EOF" } sort keys %realms;
        location /v2/$_/ {
            if (\$http_authorization != "Bearer $realms{$_}[1]") {
                add_header WWW-Authenticate
                           'Bearer realm="$realms{$_}[0]",service="hostile"'
                           always;
                return 401 '{"errors":[{"code":"UNAUTHORIZED"}]}';
            }
            return 200 '{"name":"$_/app","tags":["1"]}';
        }
EOF
my $front = start_nginx(plain => 1, ports => [$fport], http => <<"EOF");
    log_format front '\$request "\$http_authorization"';
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/front.log front;
        default_type application/json;
        location = /token {
            return 200 '{"token":"same-token","expires_in":300}';
        }
$locations
    }
EOF

my $ng = start_nginx(ports => [$sport, $aport, $oport],
                     ca => slurp($SYSTEM_CA) . slurp($ca->{crt}),
                     http => <<"EOF");
    resolver 127.0.0.1:$dport valid=30s ipv6=off;
    registry hostile.test http://127.0.0.1:$fport;
    registry_default hostile.test;
    server {
        listen 127.0.0.1:$sport;
        include $ROOT/registry_params;
    }
    server {
        listen 127.0.0.1:$aport;
        registry_redirect_allow 127.0.0.0/8;
        include $ROOT/registry_params;
    }
    server {
        listen 127.0.0.1:$oport;
        registry_redirect_allow 127.0.0.0/8;
        registry_redirect_http on;
        include $ROOT/registry_params;
    }
EOF

sub tags {
    my ($port, $name) = @_;
    return http_get($port, "/v2/$name/app/tags/list");
}

sub oci_error {
    my ($r, $status, $what) = @_;
    is($r->{status}, $status, "$what: $status");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE',
       '... an OCI body');
}

# the mirror's own log: requests for the self realm
sub self_requests {
    return grep { m{"GET /v2/self/app/manifests/1\?} }
           file_lines($ng->{access_log});
}

# --- the registry's own origin: trusted, no allow list needed ------------

my $r = tags($sport, 'same');
is($r->{status}, 200, 'realm on the registry\'s origin: trusted, 200');
ok(eventually(sub { grep { m{^GET /token\?service=hostile&scope=} }
                   file_lines("$front->{dir}/front.log") }),
   '... the token fetched from the registry\'s own /token');
ok(eventually(sub { grep { m{^GET /v2/same/\S+ \S+ "Bearer same-token"$} }
                   file_lines("$front->{dir}/front.log") }),
   '... and sent with the retried request');

# --- other origins on loopback: refused unless allowed -------------------

oci_error(tags($sport, 'other'), 502, 'realm on a loopback service');
oci_error(tags($sport, 'tls'), 502, 'realm whose name resolves to loopback');
like(slurp($ng->{error_log}),
     qr/token realm "auth\.test" refused: it is 127\.0\.0\.1:$rport/,
     '... the error log says which address was refused');
oci_error(tags($aport, 'other'), 502,
          'loopback allowed, but the realm is http');
like(slurp($ng->{error_log}), qr/not fetched: http refused/,
     '... refused for http');
oci_error(tags($aport, 'nat64'), 502, 'realm on a NAT64 loopback address');
like(slurp($ng->{error_log}),
     qr/token realm "\[64:ff9b::7f00:1\]" refused: it is \[64:ff9b::7f00:1\]:/,
     '... refused for the IPv4 address it embeds');
is(scalar file_lines($realm_log), 0, 'the token service saw none of them');

# --- allowed: fetched from the checked address, with its name -------------

$r = tags($aport, 'tls');
is($r->{status}, 200, 'https realm on loopback, allowed: 200');
my @seen;
ok(eventually(sub { @seen = file_lines($realm_log) }),
   '... the token service was asked');
like($seen[0] // '',
     qr/^$rport GET \/token\?\S+ HTTP\/1\.1 "auth\.test:$rport" "auth\.test" "[^"-][^"]*"$/,
     '... with the realm\'s name as Host and TLS name, and a CDN-Loop');

$r = tags($oport, 'other');
is($r->{status}, 200, 'http realm on loopback, allowed with http: 200');
ok(eventually(sub { grep { /^$hport GET \/token\?\S+ HTTP\/1\.1 "127\.0\.0\.1:$hport" / }
                   file_lines($realm_log) }),
   '... fetched from it');

# --- a realm on the mirror itself -------------------------------------------

is(scalar self_requests(), 0, 'nothing asked the mirror for the self realm yet');
oci_error(tags($sport, 'self'), 502, 'realm on the mirror itself, strict');
is(scalar self_requests(), 0, '... refused before any request to the mirror');

oci_error(tags($oport, 'self'), 502,
          'realm on the mirror itself, loopback and http allowed');
is(at_least(1, sub { scalar self_requests() }), 1,
   '... one mirror-to-mirror request');
ok((grep { m{ HTTP/1\.1" 508 } } self_requests()),
   '... refused there as a loop (508)');

# a fragment hides what follows from the origin check; the realm's own
# arguments would follow it: refused, and nothing is fetched for it
$r = tags($oport, 'frag');
oci_error($r, 502, 'realm with a fragment, even on the registry\'s origin');
ok(!grep({ /#/ } file_lines("$front->{dir}/front.log")),
   '... nothing fetched for it');
ok(eventually(sub { slurp($ng->{error_log})
                    =~ /token realm "[^"]*#[^"]*" not fetched: a fragment/ }),
   '... and the error log says why');

done_testing();
