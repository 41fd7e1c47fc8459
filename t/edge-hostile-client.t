#!/usr/bin/perl

# A hostile client of the edge mirror (issue 11): holding some valid
# credentials (bob: public/*, alice: team-a/* and public/*) or none, it
# tries to read what another client's pull put in the cache and Harbor
# would refuse it.  Each subtest is a finding of the review of branch
# rev-client: it fails while the hole is open.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use RegistryTest;
use Edge;

# Two Harbors, both auth=client on one mirror: harbor.test (the fixture's)
# and harbor2.test, another registry with its own token service, signing
# key and permissions; there alice may pull public/* only, dave team-a/*.
my $e = Edge::start();
my $e2 = Edge::start(no_mirror => 1);
Edge::set_perms($e2, alice => 'alice-pw:public/*');
# its own front, its certificate for the name harbor2.test
$e2->{reg_cert} = make_cert($e2->{ca}, 'harbor2.test', 'IP:127.0.0.1');
Edge::front($e2);

# a registry whose URL has a path prefix (a Harbor project of its own)
my $PREFIX = 'a-long-path-prefix-of-this-harbor/and-a-second-component';

my $mport = free_port();
my ($crt, $key) = @{ $e->{mirror_cert} };
my $m = start_nginx(ports => [$mport],
                    ca => slurp($SYSTEM_CA) . slurp($e->{ca}{crt})
                          . slurp($e2->{ca}{crt}),
                    http => <<"EOF2");
    limit_req_zone \$binary_remote_addr zone=registry_login:1m rate=600r/m;
    upstream harbor.test { server 127.0.0.1:$e->{fport}; }
    upstream harbor2.test { server 127.0.0.1:$e2->{fport}; }
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    registry harbor.test https://harbor.test auth=client;
    registry harbor2.test https://harbor2.test auth=client;
    registry pre.test https://harbor.test/$PREFIX auth=client;
    server {
        listen 127.0.0.1:$mport ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        registry_default harbor.test;
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
            limit_req zone=registry_login burst=60 nodelay;
        }
    }
EOF2

sub req {
    my ($method, $path, %o) = @_;
    return Edge::https($e, $method, $path, port => $mport, %o);
}

# docker's token request through the relay, for a service of the mirror's
sub relay_token {
    my ($service, $user, $pw, @scopes) = @_;
    my $q = join '&', "service=$service", 'client_id=docker',
            map { 'scope=' . Edge::esc($_) } @scopes;
    my $r = req('GET', "/_registry/auth?$q", who => $user,
                headers => [Edge::basic($user, $pw)]);
    return (eval { $r->{json}{token} }, $r);
}

subtest 'a token of one auth=client registry is not a grant on another'
=> sub {
    my $img2 = $e2->{images}{team_a};
    my $A2 = $e2->{private_blob_a};

    # dave may pull team-a/app at harbor2.test: his pull fills the cache
    my ($dave, $r) = relay_token('harbor2.test', 'dave', 'dave-pw',
                                 'repository:team-a/app:pull');
    is($r->{status}, 200, 'dave: a token of harbor2.test through the relay');
    my $p = Edge::pull($e, $dave, $img2, prefix => 'harbor2.test/',
                       port => $mport, who => 'dave');
    ok($p->{ok}, 'dave pulls harbor2.test/team-a/app')
        or diag explain $p->{status};

    # at harbor2.test alice may not: the relay's token grants nothing
    my ($t2) = relay_token('harbor2.test', 'alice', 'alice-pw',
                           'repository:team-a/app:pull');
    $r = req('GET', "/v2/harbor2.test/team-a/app/blobs/$A2", who => 'alice',
             headers => [Edge::bearer($t2)]);
    is($r->{status}, 403, 'alice, harbor2.test\'s token: 403');

    # alice's token of harbor.test (another service, another signer:
    # harbor2.test's registry refuses it)
    my ($t1) = relay_token('harbor.test', 'alice', 'alice-pw',
                           'repository:team-a/app:pull');
    ok($t1, 'alice: a token of harbor.test granting team-a/app');
    $r = Edge::https($e2, 'GET', "/v2/team-a/app/blobs/$A2",
                     port => $e2->{reg}{port},
                     headers => [Edge::bearer($t1)]);
    is($r->{status}, 401, 'harbor2.test\'s registry itself refuses it');

    for my $path ("blobs/$A2", "manifests/$img2->{digest}", 'manifests/1') {
        for my $method ('GET', 'HEAD') {
            $r = req($method, "/v2/harbor2.test/team-a/app/$path",
                     who => 'alice',
                     headers => [Edge::bearer($t1), @Edge::ACCEPT]);
            isnt($r->{status}, 200, "$method harbor2.test/team-a/app/$path "
                 . "with harbor.test's token: not served ($r->{status})");
            isnt(sha256_hex($r->{body}), substr($A2, 7),
                 '... not the blob') if $method eq 'GET' && $path =~ /blobs/;
        }
    }
};

# The relay sizes its buffer of rewritten scopes by the client's scope
# values plus the prefix once a value; each repository scope in a value
# (space-separated, as the OAuth2 form has them) gets the prefix: a value
# of many short scopes writes far past the buffer (the worker dies).
subtest 'many scopes in one value, a registry with a path prefix' => sub {
    my $v = join '+', ('repository:a:pull') x 200;
    for my $form ('GET', 'POST') {
        my $r = $form eq 'GET'
            ? req('GET', "/_registry/auth?service=pre.test&scope=$v",
                  who => 'anonymous')
            : req('POST', '/_registry/auth', who => 'anonymous',
                  body => "grant_type=password&username=bob&password=bob-pw"
                          . "&service=pre.test&scope=$v");
        ok($r->{status}, "$form form: answered ($r->{status})");
    }
    my @died = grep { /exited on signal/ } file_lines($m->{error_log});
    is(scalar @died, 0, 'no worker died') or diag join "\n", @died;
};

done_testing();
