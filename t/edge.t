#!/usr/bin/perl

# Issue 11: an edge cache in front of a private Harbor, each client's own
# login deciding what it reads (t/lib/Edge.pm: a TLS token-auth registry
# with public/app, team-a/app, team-b/secret; the mirror over TLS with
# "registry harbor.test ... auth=client", registry_auth_valid 2s).  Every
# request is shaped as the docker daemon sends it: ping /v2/, the token
# from the challenge's realm with account=, client_id=docker,
# offline_token=true, scope= and service=, HEAD the tag with docker's
# Accept lines, GET the manifest by digest, GET the blobs.  One subtest a
# point of the issue; the order is the one the cache's state needs
# (anonymous fills first, alice's private fill, the others after; the
# upstream down last).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64;
use Time::HiRes qw(time);
use RegistryTest;
use Edge;

my $e = eval {
    Edge::start(auth_valid => '2s', login_rate => '6000r/m',
                login_burst => 200)
};
if (!$e) {
    fail('the edge fixture starts (the mirror takes auth=client, '
         . 'registry_auth_valid, registry_auth_relay)');
    diag $@;
    done_testing();
    exit;
}

my $mport = $e->{mport};
my %img = %{ $e->{images} };
my ($S, $P, $A, $B) = @$e{qw(shared_blob public_blob private_blob_a
                             private_blob_b)};
my $realm = "https://127.0.0.1:$mport/_registry/auth";

sub code { return eval { $_[0]{json}{errors}[0]{code} } // '' }
sub hdr { return $_[0]{headers}{lc $_[1]}[0] // '' }
sub req { return Edge::https($e, @_) }
sub tok { return Edge::token($e, @_) }
sub tokens_log { return file_lines($e->{token_log}) }

# one refusal: status, OCI code (HEAD has no body), never the blob
sub refused {
    my ($r, $status, $ocicode, $what) = @_;
    is($r->{status}, $status, "$what: $status");
    is(code($r), $ocicode, "$what: $ocicode")
        if $ocicode && $r->{method} ne 'HEAD';
    ok($r->{body} eq '' || 'sha256:' . sha256_hex($r->{body}) ne $A
       && 'sha256:' . sha256_hex($r->{body}) ne $B, "$what: no private blob");
}

sub challenge_ok {
    my ($r, $scope, $what) = @_;
    my $c = Edge::challenge($r);
    is($c->{realm}, $realm, "$what: the mirror's realm");
    is($c->{service}, 'harbor.test', "$what: the mirror's service");
    is($c->{scope}, $scope, "$what: scope $scope") if $scope;
}

my $blob_a;          # A's bytes, from alice's pull

# --- point 2: login works; no 403 before credentials ---------------------

subtest 'point 2: challenges on /v2/ and for content anonymous cannot read'
=> sub {
    my $r = req('GET', '/v2/', who => 'anonymous');
    is($r->{status}, 401, 'ping /v2/ without credentials: 401');
    challenge_ok($r, undef, 'ping');
    like(hdr($r, 'www-authenticate'), qr/^Bearer /, '... a Bearer challenge');

    $r = req('HEAD', '/v2/team-a/app/manifests/1', who => 'anonymous',
             headers => \@Edge::ACCEPT);
    is($r->{status}, 401, 'anonymous HEAD of a private tag: 401, not 403');
    challenge_ok($r, 'repository:team-a/app:pull', 'private tag');
    $r = req('GET', "/v2/team-a/app/blobs/$A", who => 'anonymous');
    refused($r, 401, 'UNAUTHORIZED', 'anonymous GET of a private blob');
    challenge_ok($r, 'repository:team-a/app:pull', 'private blob');

    # anonymous reads what anonymous may read: public/app's manifest,
    # config and own layer (not S) are filled anonymously, shared
    $r = req('HEAD', '/v2/public/app/manifests/1', who => 'anonymous',
             headers => \@Edge::ACCEPT);
    is($r->{status}, 200, 'anonymous HEAD of a public tag: 200');
    is(hdr($r, 'docker-content-digest'), $img{public}{digest}, '... digest');
    for my $p ("manifests/$img{public}{digest}", "blobs/$img{public}{config}",
               "blobs/$P") {
        $r = req('GET', "/v2/public/app/$p", who => 'anonymous',
                 headers => \@Edge::ACCEPT);
        is($r->{status}, 200, "anonymous GET public/app/$p: 200");
    }
};

# --- point 3: the relay ------------------------------------------------------

my ($alice, $bob_public, $bob_team_a);
subtest 'point 3: the token relay (GET and POST forms, scopes, refusals)'
=> sub {
    my ($t, $r) = tok('alice', 'alice-pw', 'repository:team-a/app:pull');
    is($r->{status}, 200, 'alice: GET form through the relay, 200');
    ok($t, '... a token');
    is_deeply([sort keys %{ $r->{json} // {} }],
              [qw(access_token expires_in issued_at refresh_token token)],
              '... the token server\'s answer, unchanged '
              . '(offline_token=true: a refresh token)');
    is_deeply(Edge::claims($t)->{access},
              [{ type => 'repository', name => 'team-a/app',
                 actions => ['pull'] }], '... granting team-a/app pull');
    is((tokens_log())[-1], 'GET alice repository:team-a/app:pull',
       '... the token server got alice\'s request for that scope');
    $alice = $t;
    $r = req('GET', '/v2/', who => 'alice', headers => [Edge::bearer($t)]);
    is($r->{status}, 200, 'ping /v2/ with the relayed token: 200');

    # pull only, upstream names
    ($t, $r) = tok('alice', 'alice-pw', 'repository:team-a/app:pull,push');
    is($r->{status}, 200, 'alice asks pull,push: 200');
    is((tokens_log())[-1], 'GET alice repository:team-a/app:pull',
       '... the relay asked for pull only');

    # several scopes, each granted or refused on its own
    ($t, $r) = tok('alice', 'alice-pw', 'repository:team-a/app:pull',
                   'repository:team-b/secret:pull');
    is($r->{status}, 200, 'two scopes, one refused: 200');
    is((tokens_log())[-1], 'GET alice repository:team-a/app:pull '
       . 'repository:team-b/secret:pull', '... both relayed');
    is_deeply([map { $_->{name} } @{ Edge::claims($t)->{access} }],
              ['team-a/app'], '... team-b/secret absent from the grant');
    $r = req('GET', "/v2/team-b/secret/manifests/$img{team_b}{digest}",
             who => 'alice', headers => [Edge::bearer($t), @Edge::ACCEPT]);
    refused($r, 403, 'DENIED', 'that token on team-b/secret (a refusal)');

    # the OAuth2 POST form, refresh tokens
    my $form = 'grant_type=password&username=alice&password=alice-pw'
             . '&service=harbor.test&scope=repository%3Ateam-a%2Fapp%3Apull'
             . '&client_id=containerd-client&access_type=offline';
    $r = req('POST', '/_registry/auth', body => $form, who => 'alice');
    is($r->{status}, 200, 'POST grant_type=password: 200');
    my $refresh = eval { $r->{json}{refresh_token} };
    ok($refresh, '... access_type=offline: a refresh token');
    Edge::note_seen($e, 'alice', eval { $r->{json}{access_token} }, $refresh);
    is((tokens_log())[-1], 'POST alice repository:team-a/app:pull',
       '... relayed as a POST');
    $r = req('POST', '/_registry/auth', who => 'alice',
             body => 'grant_type=refresh_token&refresh_token=' . ($refresh // '')
             . '&service=harbor.test&scope=repository%3Ateam-a%2Fapp%3Apull'
             . '&client_id=docker');
    is($r->{status}, 200, 'POST grant_type=refresh_token: 200');
    my $rt = eval { $r->{json}{access_token} };
    Edge::note_seen($e, 'alice', $rt);
    is_deeply(Edge::claims($rt)->{access}[0]{name}, 'team-a/app',
              '... a token for team-a/app');

    # what the relay does not relay: 404, nothing reaches the token server
    my $n = tokens_log();
    $r = req('PUT', '/_registry/auth', body => $form, who => 'alice');
    is($r->{status}, 404, 'PUT to the relay: 404');
    $r = req('POST', '/_registry/auth', who => 'alice',
             body => 'grant_type=authorization_code&code=x&client_id=docker');
    is($r->{status}, 404, 'POST grant_type=authorization_code: 404');
    is(scalar tokens_log(), $n, '... neither reached the token server');

    # wrong credentials: the token server's 401, handed back
    ($t, $r) = tok('alice', 'wrong', 'repository:team-a/app:pull');
    is($r->{status}, 401, 'a wrong password: 401');
    is(hdr($r, 'www-authenticate'), 'Basic realm="token"',
       '... with the token server\'s Basic challenge');
    is((tokens_log())[-1], 'GET !alice repository:team-a/app:pull',
       '... the token server refused it');

    # a refused scope: 200, an empty grant, which the mirror takes as a
    # refusal
    ($bob_team_a, $r) = tok('bob', 'bob-pw', 'repository:team-a/app:pull');
    is($r->{status}, 200, 'bob asks for team-a/app: 200');
    is_deeply(Edge::claims($bob_team_a)->{access}, [], '... an empty grant');
    $r = req('HEAD', '/v2/team-a/app/manifests/1', who => 'bob',
             headers => [Edge::bearer($bob_team_a), @Edge::ACCEPT]);
    refused($r, 403, undef, 'bob\'s empty grant on the team-a tag');
    ($bob_public) = tok('bob', 'bob-pw', 'repository:public/app:pull');
    ok($bob_public, 'bob: a token for public/app');
};

# --- point 1: alice's pull fills the cache -----------------------------------

my $alice_mark;
subtest 'point 1: credentialed answers of an auth=client registry cached'
=> sub {
    $alice_mark = Edge::mark($e);
    my $p = Edge::pull($e, $alice, $img{team_a}, who => 'alice');
    ok($p->{ok}, 'alice pulls team-a/app:1 through the mirror')
        or diag explain $p->{status};
    ($blob_a) = map { $_->{body} } grep { $_->{path} =~ /\Q$A\E$/ }
                @{ $p->{answers} };
    ok(cached_digest($e->{mirror}, $A), 'A is in the cache');
    ok(cached_digest($e->{mirror}, $img{team_a}{digest}),
       'so is the team-a manifest');
    my $m = Edge::mark($e);
    my $r = req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
                headers => [Edge::bearer($alice)]);
    is($r->{status}, 200, 'alice asks A again: 200');
    is(hdr($r, 'x-registry-cache'), 'HIT', '... from the cache');
    Edge::mark($e);
    is(scalar(grep { /^GET .*blobs\/\Q$A\E/ } Edge::upstream_since($e, $m)),
       0, '... no GET of A upstream');

    # a registry without auth=client keeps today's behaviour: its
    # client-credentialed answers go upstream and are not cached
    $r = req('GET', "/v2/other.test/public/app/blobs/$P", who => 'bob',
             headers => [Edge::bearer($bob_public)]);
    is($r->{status}, 200, 'other.test (no auth=client), bob\'s token: 200');
    is(hdr($r, 'x-registry-cache'), 'BYPASS', '... BYPASS as today');
    $p = Edge::pull($e, undef, $img{public}, prefix => 'other.test/',
                    who => 'anonymous');
    ok($p->{ok}, 'anonymous pull of public/app through other.test')
        or diag explain $p->{status};
};

# --- point 6: alice's fills used alice's token, one copy per digest ------------

subtest 'point 6: fills with the client\'s own credentials, one copy' => sub {
    my @f = Edge::front_since($e, $alice_mark);
    my @mine = grep { $_->[0] =~ m{^(GET|HEAD) /v2/team-a/} } @f;
    ok(scalar(grep { $_->[0] =~ m{^GET /v2/team-a/app/blobs/\Q$A\E} } @mine),
       'A was fetched upstream');
    is_deeply([grep { $_->[1] ne 'alice' } @mine], [],
              'every request upstream for alice\'s pull carried her token');
    my @keys = grep { /\Q$A\E/ } keys %{ cache_entries("$e->{mirror}{dir}/cache") };
    is(scalar @keys, 1, 'A is cached once') or diag explain \@keys;
    like($keys[0] // '', qr/^\* blob \Q$A\E$/, '... under "* blob <digest>"');
};

# --- point 8: what a second pull costs the upstream ----------------------------

subtest 'point 8: a warm pull costs no blob GET, at most 2 requests' => sub {
    my ($t) = tok('alice', 'alice-pw', 'repository:team-a/app:pull');
    my $m = Edge::mark($e);
    my $p = Edge::pull($e, $t, $img{team_a}, who => 'alice');
    ok($p->{ok}, 'alice pulls team-a/app:1 again') or diag explain $p->{status};
    Edge::mark($e);
    my @up = Edge::upstream_since($e, $m);
    is(scalar(grep { /^GET .*\/blobs\// } @up), 0, '... no blob GET upstream');
    cmp_ok(scalar @up, '<=', 2, '... at most 2 requests upstream')
        or diag explain \@up;

    Edge::set_perms($e, carol => 'carol-pw:team-a/*');
    $e->{users}{carol} = 'carol-pw';
    my ($c) = tok('carol', 'carol-pw', 'repository:team-a/app:pull');
    ok($c, 'carol (team-a, added at runtime): a token');
    $m = Edge::mark($e);
    $p = Edge::pull($e, $c, $img{team_a}, who => 'carol');
    ok($p->{ok}, 'carol pulls team-a/app:1') or diag explain $p->{status};
    Edge::mark($e);
    @up = Edge::upstream_since($e, $m);
    is(scalar(grep { /^GET .*\/blobs\// } @up), 0, '... no blob GET upstream');
    is_deeply([grep { $_->[1] !~ /^(carol|-)$/ } Edge::front_since($e, $m)],
              [], '... and nobody else\'s credentials went upstream for her')
};

# --- point 5: bob and anonymous never get A ------------------------------------

subtest 'point 5: a private entry, however it is asked for' => sub {
    my $m = Edge::mark($e);
    my @anon = (who => 'anonymous');
    my @range = ('Range: bytes=0-3');
    for my $method ('GET', 'HEAD') {
        my $r = req($method, "/v2/team-a/app/blobs/$A", @anon);
        refused($r, 401, 'UNAUTHORIZED', "anonymous $method team-a A");
        challenge_ok($r, 'repository:team-a/app:pull',
                     "anonymous $method team-a A");
        refused(req($method, "/v2/public/app/blobs/$A", @anon), 404,
                'BLOB_UNKNOWN', "anonymous $method public/app A");
        refused(req($method, "/v2/other.test/public/app/blobs/$A", @anon),
                404, 'BLOB_UNKNOWN', "anonymous $method other.test public A");
        refused(req($method, "/v2/other.test/team-a/app/blobs/$A", @anon),
                403, 'DENIED', "anonymous $method other.test team-a A");
        my @bob = (who => 'bob', headers => [Edge::bearer($bob_public)]);
        $r = req($method, "/v2/team-a/app/blobs/$A", @bob);
        refused($r, 401, 'UNAUTHORIZED', "bob (public token) $method team-a A");
        challenge_ok($r, 'repository:team-a/app:pull', "bob $method team-a A");
        refused(req($method, "/v2/public/app/blobs/$A", @bob), 404,
                'BLOB_UNKNOWN', "bob $method public/app A");
        refused(req($method, "/v2/other.test/public/app/blobs/$A", @bob),
                404, 'BLOB_UNKNOWN', "bob $method other.test public A");
        refused(req($method, "/v2/team-a/app/blobs/$A", who => 'bob',
                    headers => [Edge::bearer($bob_team_a)]),
                403, 'DENIED', "bob (empty team-a grant) $method team-a A");
    }
    refused(req('GET', "/v2/team-a/app/blobs/$A", @anon,
                headers => \@range), 401, 'UNAUTHORIZED',
            'anonymous Range team-a A');
    refused(req('GET', "/v2/public/app/blobs/$A", @anon,
                headers => \@range), 404, 'BLOB_UNKNOWN',
            'anonymous Range public/app A');
    refused(req('GET', "/v2/public/app/blobs/$A", who => 'bob',
                headers => [Edge::bearer($bob_public), @range]), 404,
            'BLOB_UNKNOWN', 'bob Range public/app A');
    refused(req('GET', "/v2/team-a/app/blobs/$A", who => 'bob',
                headers => [Edge::bearer($bob_team_a), @range]), 403,
            'DENIED', 'bob Range team-a A');
    # the upstream was asked, never for A's bytes
    Edge::mark($e);
    my @up = Edge::upstream_since($e, $m);
    is(scalar(grep { m{^GET /v2/team-a/app/blobs/\Q$A\E} } @up), 0,
       'nobody\'s request fetched A from team-a/app upstream again');
    ok(scalar(grep { $_ eq "HEAD /v2/public/app/blobs/$A" } @up),
       'anonymous public/app A was checked with a HEAD upstream')
        or diag explain \@up;

    # other.test, without auth=client, sends bob's own token upstream as
    # today (not cached, the registry's business): refused there
    my $r = req('GET', "/v2/other.test/team-a/app/blobs/$A", who => 'bob',
                headers => [Edge::bearer($bob_team_a)]);
    ok($r->{status} == 401 || $r->{status} == 403,
       "bob via other.test team-a A: refused ($r->{status})");
    refused($r, $r->{status}, undef, 'bob via other.test team-a A');
    ok(index($r->{raw}, substr($blob_a // (q{x} x 64), 20, 32)) < 0,
       '... not a byte of A');

    # S: filled by alice (private), readable anonymously in public/app
    $m = Edge::mark($e);
    $r = req('GET', "/v2/public/app/blobs/$S", @anon);
    is($r->{status}, 200, 'anonymous GET of S (alice filled it) in public/app');
    is('sha256:' . sha256_hex($r->{body}), $S, '... S itself');
    is(hdr($r, 'x-registry-cache'), 'HIT', '... from the cache');
    Edge::mark($e);
    @up = Edge::upstream_since($e, $m);
    ok(scalar(grep { $_ eq "HEAD /v2/public/app/blobs/$S" } @up),
       '... after an anonymous HEAD upstream') or diag explain \@up;
    is(scalar(grep { /^GET / } @up), 0, '... and no GET');
};

# --- point 4: the digest must belong to the repository ------------------------

subtest 'point 4: a digest of another repository is not served' => sub {
    my ($t) = tok('tess', 'tess-pw', 'repository:team-b/secret:pull');
    my $p = Edge::pull($e, $t, $img{team_b}, who => 'tess');
    ok($p->{ok}, 'tess pulls team-b/secret:1 (B cached)')
        or diag explain $p->{status};
    # (renamed into place as the fill ends, which can be just after
    # the client has the last byte)
    ok(eventually(sub { cached_digest($e->{mirror}, $B) }),
       'B is in the cache');
    my @alice = (who => 'alice', headers => [Edge::bearer($alice)]);
    for my $method ('GET', 'HEAD') {
        refused(req($method, "/v2/team-a/app/blobs/$B", @alice), 404,
                'BLOB_UNKNOWN', "alice $method team-a/app/blobs/B");
    }
    refused(req('GET', "/v2/team-a/app/blobs/$B", who => 'alice',
                headers => [Edge::bearer($alice), 'Range: bytes=0-3']),
            404, 'BLOB_UNKNOWN', 'alice Range team-a/app/blobs/B');
    refused(req('GET', "/v2/team-a/app/manifests/$img{team_b}{digest}",
                who => 'alice',
                headers => [Edge::bearer($alice), @Edge::ACCEPT]),
            404, 'MANIFEST_UNKNOWN', 'alice team-a/app/manifests/<team-b>');
    my ($pub) = tok('alice', 'alice-pw', 'repository:public/app:pull');
    refused(req('GET', "/v2/public/app/blobs/$A", who => 'alice',
                headers => [Edge::bearer($pub)]),
            404, 'BLOB_UNKNOWN', 'alice public/app/blobs/A (hers elsewhere)');
};

# --- point 7: wrong, expired, tampered, revoked -------------------------------

subtest 'point 7: wrong, expired, tampered and revoked credentials' => sub {
    my $r = req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
                headers => [Edge::basic('alice', 'wrong')]);
    refused($r, 401, 'UNAUTHORIZED', 'wrong Basic credentials on content');
    challenge_ok($r, 'repository:team-a/app:pull', 'wrong credentials');
    refused(req('GET', "/v2/team-a/app/blobs/$A", who => 'x',
                headers => ['Authorization: Bearer not-a-token']),
            401, 'UNAUTHORIZED', 'a bearer that is no token');

    # tampered: one character of alice's payload flipped; bob's token
    # with a payload that grants team-a/app
    my ($h, $pl, $sig) = split /\./, $alice // q{..};
    $pl //= q{};
    my $i = int(length($pl) / 2);
    my $c = substr($pl, $i, 1) eq q{A} ? q{B} : q{A};
    my $flipped = join '.', $h, substr($pl, 0, $i) . $c
                            . substr($pl, $i + 1), $sig;
    refused(req('GET', "/v2/team-a/app/blobs/$A", who => 'tamper',
                headers => [Edge::bearer($flipped)]),
            401, 'UNAUTHORIZED', 'alice\'s token, a payload char flipped');
    my $claims = Edge::claims($bob_public);
    $claims->{access} = [{ type => 'repository', name => 'team-a/app',
                           actions => ['pull'] }];
    (my $forged = encode_base64(encode_json($claims), '')) =~ tr{+/}{-_};
    $forged =~ s/=+$//;
    my ($bh, undef, $bs) = split /\./, $bob_public;
    $forged = "$bh.$forged.$bs";
    $e->{seen}{$flipped} = $e->{seen}{$forged} = 'tamper';
    refused(req('GET', "/v2/team-a/app/blobs/$A", who => 'tamper',
                headers => [Edge::bearer($forged)]),
            401, 'UNAUTHORIZED', 'bob\'s token with a forged team-a grant');

    # expired: dave's tokens live 3 s
    my ($d) = tok('dave', 'dave-pw', 'repository:team-a/app:pull');
    $r = req('GET', "/v2/team-a/app/blobs/$A", who => 'dave',
             headers => [Edge::bearer($d)]);
    is($r->{status}, 200, 'dave\'s fresh token: A');
    wait_until((Edge::claims($d)->{exp} // 0) + 1);
    $r = req('GET', "/v2/team-a/app/blobs/$A", who => 'dave',
             headers => [Edge::bearer($d)]);
    refused($r, 401, 'UNAUTHORIZED', 'dave\'s token once expired');
    challenge_ok($r, 'repository:team-a/app:pull', 'expired token');

    # revoked: a token fetched after the revocation grants nothing
    Edge::set_perms($e, alice => 'alice-pw:public/*');
    my ($after) = tok('alice', 'alice-pw', 'repository:team-a/app:pull');
    is_deeply(Edge::claims($after)->{access}, [],
              'alice revoked: her new token grants nothing');
    refused(req('HEAD', '/v2/team-a/app/manifests/1', who => 'alice',
                headers => [Edge::bearer($after), @Edge::ACCEPT]),
            403, undef, 'alice revoked: HEAD of the tag');
    refused(req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
                headers => [Edge::bearer($after)]),
            403, 'DENIED', 'alice revoked: GET of A');
    Edge::set_perms($e, alice => 'alice-pw:team-a/*,public/*');

    # a token the relay never saw: decided by an upstream HEAD, kept 2 s,
    # then asked again.  The registry stops trusting its signer.
    my $direct = Edge::direct_token($e, 'alice', 'alice-pw',
                                    'repository:team-a/app:pull');
    my $m = Edge::mark($e);
    # a decision kept "2 s" lives until the second after next begins:
    # taken just after a second begins, it lives nearly 2 s, room for
    # the restart below
    wait_until(int(time) + 1.02);
    my $t0 = time;
    $r = req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
             headers => [Edge::bearer($direct)]);
    is($r->{status}, 200, 'a token from the token server directly: A');
    Edge::mark($e);
    ok(scalar(grep { $_->[0] =~ /^HEAD / && $_->[2] eq "Bearer $direct" }
              Edge::front_since($e, $m)),
       '... decided by an upstream HEAD with that token');
    Edge::restart_registry($e, bundle => [$e->{signer}{crt}]);
    $r = Edge::https($e, 'HEAD', "/v2/team-a/app/blobs/$A",
                     port => $e->{reg}{port},
                     headers => [Edge::bearer($direct)]);
    is($r->{status}, 401, 'the registry now refuses that token');
    SKIP: {
        skip 'the registry took the decision time to restart', 1
            if time - $t0 >= 1.5;
        is(req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
               headers => [Edge::bearer($direct)])->{status}, 200,
           '... the mirror\'s decision, still fresh, serves it');
    }
    wait_until($t0 + 2);
    my $last;
    eventually(sub {
        $last = req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
                    headers => [Edge::bearer($direct)]);
        $last->{status} != 200;
    }, 10);
    refused($last, 401, 'UNAUTHORIZED',
            'after the decision time: asked again, refused');
};

# --- point 3, the bound on password guessing; the realm's base URL ------------

subtest 'point 3: password guessing bounded by limit_req; realm base URL'
=> sub {
    my $g = Edge::mirror($e, auth_valid => '2s', login_rate => '30r/m',
                         login_burst => 10,
                         auth_realm => 'https://edge.example/_registry/auth');
    my $r = req('GET', '/v2/', port => $g->{mport}, who => 'anonymous');
    is(Edge::challenge($r)->{realm}, 'https://edge.example/_registry/auth',
       'registry_auth_realm: the challenge names it');
    my $before = grep { /^GET !alice / } tokens_log();
    my @s;
    for my $n (1 .. 25) {
        push @s, req('GET', '/_registry/auth?account=alice&client_id=docker'
                     . '&scope=repository%3Ateam-a%2Fapp%3Apull'
                     . '&service=harbor.test', port => $g->{mport},
                     who => 'guesser',
                     headers => [Edge::basic('alice', "guess$n")])->{status};
    }
    is($s[0], 401, 'a wrong password: 401');
    ok(scalar(grep { $_ == 503 } @s), '25 quick guesses: 503 after the burst')
        or diag "@s";
    is_deeply([grep { $_ != 401 && $_ != 503 } @s], [], '... 401 or 503 only');
    is(at_least(scalar(grep { $_ == 401 } @s),
                sub { (grep { /^GET !alice / } tokens_log()) - $before }),
       scalar(grep { $_ == 401 } @s),
       '... the refused guesses never reached the token server');
    stop($g->{mirror}{pid});
};

# --- point 9: the upstream down ----------------------------------------------

subtest 'point 9: the upstream down' => sub {
    my ($fresh) = tok('alice', 'alice-pw', 'repository:team-a/app:pull');
    ok($fresh, 'alice: a fresh token before the upstream goes');
    my $unknown = Edge::direct_token($e, 'alice', 'alice-pw',
                                     'repository:team-a/app:pull');
    stop($e->{front}{pid});
    stop($e->{reg}{pid});
    my @anon = (who => 'anonymous');
    my $r = req('HEAD', '/v2/public/app/manifests/1', @anon,
                headers => \@Edge::ACCEPT);
    is($r->{status}, 200, 'anonymous HEAD of the public tag: 200 (stale)');
    for my $p ("manifests/$img{public}{digest}", "blobs/$P") {
        $r = req('GET', "/v2/public/app/$p", @anon,
                 headers => \@Edge::ACCEPT);
        is($r->{status}, 200, "anonymous public/app/$p: served");
    }
    my $p = Edge::pull($e, $fresh, $img{team_a}, who => 'alice');
    ok($p->{ok}, 'alice with fresh grants pulls team-a/app:1')
        or diag explain $p->{status};
    refused(req('GET', "/v2/team-a/app/blobs/$A", who => 'alice',
                headers => [Edge::bearer($unknown)]),
            503, 'UNAVAILABLE', 'a token the mirror knows nothing of: 503');
    refused(req('GET', "/v2/public/app/blobs/$S", @anon), 503, 'UNAVAILABLE',
            'anonymous, a private entry it cannot check now: 503');
};

# --- point 10: credentials and tokens nowhere ------------------------------------

subtest 'point 10: credentials and tokens in no log, cache or answer' => sub {
    my %seen = %{ Edge::tokens_seen($e) };
    my %secret = %seen;
    for my $u (keys %{ $e->{users} }) {
        my $pw = $e->{users}{$u};
        $secret{$pw} = $u;
        $secret{encode_base64("$u:$pw", '')} = $u;
    }
    for my $t (keys %seen) {
        my @parts = split /\./, $t;
        $secret{$parts[2]} = $seen{$t} if @parts == 3 && length $parts[2];
    }
    my $dir = $e->{mirror}{dir};
    my @files = (map { "$dir/$_" } qw(error.log access.log stderr.log
                                       stdout.log)),
                map { $_->[0] } values %{ cache_entries("$dir/cache") };
    my @found;
    for my $f (@files) {
        my $data = slurp($f);
        push @found, map { "$f: $secret{$_}'s " . substr($_, 0, 12) }
                     grep { index($data, $_) >= 0 } keys %secret;
    }
    is_deeply(\@found, [], 'no password, Basic string or token in the '
              . "mirror's logs and cache files (" . scalar(@files)
              . ' files)');

    my @leaks;
    for my $r (@{ $e->{responses} }) {
        for my $t (keys %seen) {
            push @leaks, "$r->{who} got $seen{$t}'s token ($r->{path})"
                if index($r->{raw}, $t) >= 0 && $seen{$t} ne $r->{who};
        }
    }
    is_deeply(\@leaks, [], 'no answer carried another client\'s token');

    my @scopes = map { my @w = split / /; @w[2 .. $#w] } tokens_log();
    is_deeply([grep { $_ ne '-' && !m{^repository:(public/app|team-a/app|team-b/secret):pull$} } @scopes],
              [], 'the token server got only pull scopes of upstream names')
        or diag explain \@scopes;
    my $front = slurp($e->{front_log});
    is_deeply([grep { index($front, $_) >= 0 }
               map { encode_base64("$_:$e->{users}{$_}", '') }
               keys %{ $e->{users} }], [],
              'no user\'s password went to the registry');
};

done_testing();
