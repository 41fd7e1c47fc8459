#!/usr/bin/perl

# Issue 11, second hostile review (branch rev2).  Findings fail while the
# hole is open; guards that held are kept as "held".
#
# 1. The token relay sends the client's Authorization to the upstream's
#    realm even when it is the operator's: read by auth_basic in front of
#    the mirror, or on a server that says "registry_client_credentials
#    off".  Everywhere else the mirror keeps such credentials to itself
#    (README: "Credentials that auth_basic has read are always the
#    operator's"; registry_params: "not sent on"): $registry_authorization
#    and the auth=client checks use ngx_http_registry_client_credentials(),
#    $registry_relay_authorization reads r->main->headers_in.authorization
#    raw.  The operator's password goes to Harbor's token service.
#
# Held: a private entry of A asked for through a registry of another
# upstream that is down: the refill pass bypasses the cache, so
# proxy_cache_use_stale has nothing to hand out; 502, never the entry.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use MIME::Base64;
use RegistryTest;

my $h = start_hostile('a');
ok($h->{up}, 'upstream a up');
my ($d, $aport) = @$h{qw(dir port)};
sub upstream { hostile_asked($h, $_[0]) }

my $secret = "a private layer of team/secret on A\n" x 32;
my $D = 'sha256:' . sha256_hex($secret);
spew("$d/blobs/" . substr($D, 7), $secret);
hostile_mode($h, 'team', { auth => 'tok-a', digest => 'auto',
                           token_body => '{"token":"nope"}' });
hostile_mode($h, 'ping', { auth => 'tok-a' });

# nothing listens here: an upstream that is down
my $down = free_port();

my $op = 'Basic ' . encode_base64('operator:op-secret', '');
my ($port, $port2) = (free_port(), free_port());
my $tdir = test_dir();
spew("$tdir/htpasswd", "operator:{PLAIN}op-secret\n");
my $ng = start_nginx(ports => [$port, $port2], http => <<"EOF2");
    registry a.test http://127.0.0.1:$aport auth=client;
    registry down.test http://127.0.0.1:$down;
    server {
        listen 127.0.0.1:$port;
        registry_default a.test;
        registry_redirect_http on;
        registry_redirect_allow 127.0.0.0/8;
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
        }
    }
    # the operator's own login in front: its credentials are its own
    server {
        listen 127.0.0.1:$port2;
        registry_default a.test;
        registry_redirect_http on;
        registry_redirect_allow 127.0.0.0/8;
        auth_basic "edge";
        auth_basic_user_file $tdir/htpasswd;
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
        }
    }
EOF2

subtest '1: the operator\'s credentials never go to the realm' => sub {
    my $before = upstream(qr{^GET /token/});
    my $t = http_get($port2, '/_registry/auth?service=a.test'
                             . '&scope=repository:team/secret:pull',
                     headers => ["Authorization: $op"]);
    is($t->{status}, 200, 'the relay answers (auth_basic let it through)')
        or diag $t->{status};
    ok(upstream(qr{^GET /token/}) > $before, '... the realm was asked');
    is(upstream(qr{^GET /token/.* \Q$op\E$}), 0,
       '... without the operator\'s Basic credentials')
        or diag slurp("$d/requests.log");
    unlike(slurp("$d/requests.log"), qr/\Q$op\E/,
           'the operator\'s credentials reached no upstream request');
};

subtest 'held: a refill from an upstream that is down serves no stale '
        . 'private entry' => sub {
    my $r = http_get($port, "/v2/a.test/team/secret/blobs/$D",
                     headers => ['Authorization: Bearer tok-a']);
    is($r->{status}, 200, 'the victim fills a private entry from A');
    for my $method ('GET', 'HEAD') {
        $r = http_get($port, "/v2/down.test/team/secret/blobs/$D",
                      method => $method);
        isnt($r->{status}, 200, "$method through down.test: not 200")
            or diag $r->{status};
        ok(($r->{body} // '') ne $secret, '... not the secret');
        isnt($r->{headers}{'x-registry-cache'}[0] // '', 'HIT',
             '... not answered from the private entry');
    }
    $r = http_get($port, "/v2/down.test/team/secret/blobs/$D",
                  headers => ['Range: bytes=0-99']);
    isnt(substr($r->{body} // '', 0, 20), substr($secret, 0, 20),
         'a Range of it: not the secret');
};

unlike(slurp($ng->{error_log}),
       qr/\[(?:alert|crit|emerg)\]|exited on signal/,
       'no worker crashed, nothing critical logged');

stop($ng->{pid});
stop($h->{pid});

done_testing();
