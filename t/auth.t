#!/usr/bin/perl

# Upstream bearer tokens, as Docker Hub and Harbor hand them out: a real
# distribution registry with token auth (JWTs from a test token server,
# which the registry verifies; a token for the wrong scope is refused).
# The mirror learns the challenge from the upstream's 401, fetches a token
# for repository:<name>:pull anonymously or with the registry's
# credentials, keeps it in shared memory for every worker and across
# reloads, and fetches only when a request must go upstream.  A refusal
# after a fresh token is answered 403 DENIED, without the challenge (every
# line of it).  Credentials come from a file and never reach a client or a
# log.  A registry URL's path prefix is part of the token's scope, and a
# scope the challenge names is the one asked for.  A token too big for
# the shared zone still reaches the retried request.  The token server is
# on another origin than the registry (as Docker Hub's is), on loopback
# and http: the mirrors' configs allow that.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

my $d = test_dir();
run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
       '-keyout', "$d/signer.key", '-out', "$d/signer.crt", '-days', '2',
       '-subj', '/CN=token signer');
spew("$d/users", "pusher:push-secret\nmirror:mirror-secret\n");
spew("$d/mirror.credentials", "mirror:mirror-secret\n");

my $tport = free_port();
my $token_log = "$d/token.log";
my @token_cmd = ('perl', "$ROOT/t/lib/tokenserver.pl", $tport,
                 "$d/signer.key", "$d/signer.crt", 'test-issuer', $token_log,
                 "$d/users");
my $ts = spawn(cmd => \@token_cmd, stdout => "$d/ts.out");
ok(wait_port($tport, pid => $ts), 'token server up');

# token auth as Docker Hub and Harbor run it
my $token_auth = token_auth($tport, $d);
my $reg = start_registry(config => $token_auth);

my $img = build_image(layers => [{ a => "token a\n" }, { b => "token b\n" }]);
for my $name ('public/app:1', 'team/app:1', 'proxy-project/app:1') {
    run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
           '--dest-creds', 'pusher:push-secret', $img->{ref},
           "docker://$reg->{host}/$name");
}

# the registry really checks: no token, and a token for another scope
my $r = http_get($reg->{port}, '/v2/team/app/manifests/1');
is($r->{status}, 401, 'registry: no token, 401');
like($r->{headers}{'www-authenticate'}[0], qr/^Bearer realm="http/,
     'registry: a Bearer challenge');
my $t = http_get($tport, '/token?service=test-registry&scope='
                 . 'repository:public/app:pull',
                 headers => ['Authorization: Basic '
                             . encode_base64('pusher:push-secret', '')]);
my $jwt = decode_json($t->{body})->{token};
ok($jwt, 'a token for public/app');
my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json');
$r = http_get($reg->{port}, '/v2/public/app/manifests/1',
              headers => ["Authorization: Bearer $jwt", @oci]);
is($r->{status}, 200, 'registry: the right scope, 200');
$r = http_get($reg->{port}, '/v2/team/app/manifests/1',
              headers => ["Authorization: Bearer $jwt", @oci]);
is($r->{status}, 401, 'registry: a token for the wrong scope, 401');
unlink $token_log;

# A plain nginx in front of the registry shows what the mirror sends it;
# and, on other ports, changes what the registry answers: its challenges
# without their scope ($noscope_port), its names under "mirrored/" served
# from "proxy-project/" ($rewrite_port), a second challenge on every 401
# ($second_port).
my ($fport, $noscope_port, $rewrite_port, $second_port)
    = map { free_port() } 1 .. 4;
my $front = start_nginx(plain => 1,
                        ports => [$fport, $noscope_port, $rewrite_port,
                                  $second_port],
                        http => <<"EOF");
    log_format auth '\$request "\$http_authorization"';
    map \$upstream_http_www_authenticate \$noscope {
        "~^(?<c>.*),scope=\\x22[^\\x22]*\\x22(?<rest>.*)\$"  "\$c\$rest";
        default  \$upstream_http_www_authenticate;
    }
    map \$status \$second_challenge {
        401      'Bearer realm="http://127.0.0.1:1/elsewhere",service="x"';
        default  '';
    }
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/front.log auth;
        location / { proxy_pass $reg->{url}; }
    }
    server {
        listen 127.0.0.1:$noscope_port;
        location / {
            proxy_pass $reg->{url};
            proxy_hide_header WWW-Authenticate;
            add_header WWW-Authenticate \$noscope always;
        }
    }
    server {
        listen 127.0.0.1:$rewrite_port;
        location /v2/mirrored/ {
            proxy_pass $reg->{url}/v2/proxy-project/;
        }
        location / { proxy_pass $reg->{url}; }
    }
    server {
        listen 127.0.0.1:$second_port;
        location / {
            proxy_pass $reg->{url};
            add_header WWW-Authenticate \$second_challenge always;
        }
    }
EOF

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    log_format full '\$status \$request "\$http_authorization" '
                    '"\$sent_http_www_authenticate"';
    access_log \@DIR\@/full.log full;
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    registry docker.io $reg->{url};
    registry account.test http://127.0.0.1:$fport
                          credentials=$d/mirror.credentials;
    registry pre.test http://127.0.0.1:$reg->{port}/proxy-project
                      credentials=$d/mirror.credentials;
    registry noscope.test http://127.0.0.1:$noscope_port/proxy-project
                          credentials=$d/mirror.credentials;
    registry rewrite.test http://127.0.0.1:$rewrite_port/mirrored
                          credentials=$d/mirror.credentials;
    registry second.test http://127.0.0.1:$second_port;
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json');
sub tokens { return grep { length } split /\n/, slurp($token_log) }

# --- anonymous tokens -------------------------------------------------------

$r = http_get($port, '/v2/public/app/manifests/1', headers => \@accept);
is($r->{status}, 200, 'anonymous token: manifest');
my $m = decode_json($r->{body});
is_deeply([tokens()], ['- repository:public/app:pull'],
          'one anonymous token fetched for repository:public/app:pull');

# many requests, both workers: the token is shared, no more fetches
for my $i (1 .. 6) {
    for my $l (@{ $m->{layers} }, $m->{config}) {
        $r = http_get($port, "/v2/public/app/blobs/$l->{digest}");
        is('sha256:' . sha256_hex($r->{body}), $l->{digest},
           "blob $l->{digest} (round $i)") if $i == 1;
    }
}
is(scalar tokens(), 1, 'the token was used by every worker, fetched once');

my $out = "$d/pull";
my $log = run_out('skopeo', '--insecure-policy', 'copy',
                  '--src-tls-verify=false',
                  "docker://127.0.0.1:$port/docker.io/public/app:1",
                  "dir:$out");
is($?, 0, 'skopeo pull through the mirror') or diag $log;
is(scalar tokens(), 1, '... still one token');

# --- refused: a fresh token once, then 403 DENIED without a challenge -----

$r = http_get($port, '/v2/team/app/manifests/1', headers => \@accept);
is($r->{status}, 403, 'private repository, anonymous mirror: 403');
is(eval { $r->{json}{errors}[0]{code} }, 'DENIED', '... DENIED');
ok(!$r->{headers}{'www-authenticate'}, '... without the upstream challenge');
is(scalar(grep { /team\/app/ } tokens()), 1,
   'one token fetched for it, then the answer');
$r = http_get($port, '/v2/team/app/manifests/1', headers => \@accept);
is(scalar(grep { /team\/app/ } tokens()), 2,
   'asked again: the kept token failed, one fresh one, then 403');
is($r->{status}, 403, '... 403 again');

# --- the registry's own credentials ------------------------------------------

$r = http_get($port, '/v2/account.test/team/app/manifests/1',
              headers => \@accept);
is($r->{status}, 200, 'with the mirror account: the private manifest');
like((tokens())[-1], qr/^mirror repository:team\/app:pull$/,
     'token fetched as the mirror account');
my $priv = decode_json($r->{body})->{layers}[0]{digest};
$r = http_get($port, "/v2/account.test/team/app/blobs/$priv");
is('sha256:' . sha256_hex($r->{body}), $priv, 'private blob');

my $secret = encode_base64('mirror:mirror-secret', '');
my $everything = join '', slurp("$ng->{dir}/full.log"),
                 slurp($ng->{error_log}), slurp($ng->{access_log});
unlike($everything, qr/mirror-secret|\Q$secret\E/,
       'the credentials are in no log');
unlike($r->{raw}, qr/mirror-secret|\Q$secret\E|Bearer/,
       'nor in what the client got');
my @sent;
ok(eventually(sub { (@sent = file_lines("$front->{dir}/front.log")) >= 2 }),
   'requests went to the registry through the front');
is(scalar(grep { !/ "(-|Bearer [^"]+)"$/ } @sent), 0,
   'the registry got tokens or nothing, never the credentials')
    or diag explain \@sent;

# --- a registry URL with a path prefix: the upstream's name in the scope ---

$r = http_get($port, '/v2/pre.test/app/manifests/1', headers => \@accept);
is($r->{status}, 200, 'path prefix: the manifest under the prefix');
is((tokens())[-1], 'mirror repository:proxy-project/app:pull',
   '... with a token for the name with the prefix');
$r = http_get($port, '/v2/pre.test/app/blobs/'
              . decode_json($r->{body})->{layers}[0]{digest});
is($r->{status}, 200, '... and a blob');

# a challenge without a scope: the mirror's own has the prefix
$r = http_get($noscope_port, '/v2/proxy-project/app/manifests/1');
unlike($r->{headers}{'www-authenticate'}[0], qr/scope/,
       'the front sends challenges without a scope');
$r = http_get($port, '/v2/noscope.test/app/manifests/1', headers => \@accept);
is($r->{status}, 200, 'path prefix, no scope in the challenge: 200');
is((tokens())[-1], 'mirror repository:proxy-project/app:pull',
   '... the scope has the prefix');

# the upstream's challenge names the scope: that one is asked for
$r = http_get($rewrite_port, '/v2/mirrored/app/manifests/1');
like($r->{headers}{'www-authenticate'}[0],
     qr/scope="repository:proxy-project\/app:pull"/,
     'the rewriting front: the registry challenges for its own name');
$r = http_get($port, '/v2/rewrite.test/app/manifests/1',
              headers => \@accept);
is($r->{status}, 200, 'the challenge\'s scope: 200');
is((tokens())[-1], 'mirror repository:proxy-project/app:pull',
   '... the token asked for the challenge\'s scope');

# --- two challenges from the upstream: the client gets neither ------------

$r = http_get($second_port, '/v2/public/app/manifests/1');
is(scalar @{ $r->{headers}{'www-authenticate'} // [] }, 2,
   'the front answers 401 with two challenges');
$r = http_get($port, '/v2/second.test/public/app/manifests/1',
              headers => \@accept);
is($r->{status}, 200, 'two challenges: a token, then 200');
ok(!$r->{headers}{'www-authenticate'}, '... without either challenge')
    or diag explain $r->{headers}{'www-authenticate'};

# --- kept across a reload -------------------------------------------------------

my $starts = () = slurp($ng->{error_log}) =~ /start worker process/g;
kill 'HUP', $ng->{pid};
my $deadline = time + 30;
while (time < $deadline
       && (() = slurp($ng->{error_log}) =~ /start worker process/g)
          < $starts + 2)
{
    select undef, undef, undef, 0.05;
}
my $before = scalar tokens();
$r = http_get($port, '/v2/public/app/manifests/' . $m->{layers}[0]{digest},
              headers => \@accept);       # a miss: goes upstream
for my $i (1 .. 4) {
    http_get($port, '/v2/public/app/tags/list');
}
is(scalar tokens(), $before, 'after a reload: the kept token, no fetch');

# --- a registry behind TLS with token auth, as Docker Hub and Harbor run --

my $ca = make_ca();
my $treg = start_registry(tls => make_cert($ca, 'tls-token.test'),
                          config => $token_auth);
run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
       '--dest-creds', 'pusher:push-secret', $img->{ref},
       "docker://$treg->{host}/public/app:1");
my $tls_port = free_port();
start_nginx(ports => [$tls_port], ca => slurp($SYSTEM_CA) . slurp($ca->{crt}),
            http => <<"EOF");
    upstream tls-token.test { server 127.0.0.1:$treg->{port}; }
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    registry tls-token.test https://tls-token.test;
    server {
        listen 127.0.0.1:$tls_port;
        registry_default tls-token.test;
        include $ROOT/registry_params;
    }
EOF
my $tokens_before = scalar tokens();
$log = run_out('skopeo', '--insecure-policy', 'copy', '--src-tls-verify=false',
               "docker://127.0.0.1:$tls_port/public/app:1", "dir:$d/tls-pull");
is($?, 0, 'skopeo pull through the mirror from a TLS, token-auth registry')
    or diag $log;
is('sha256:' . sha256_hex(slurp("$d/tls-pull/manifest.json")),
   'sha256:' . sha256_hex(slurp("$out/manifest.json")), '... same manifest');
is(scalar tokens(), $tokens_before + 1, '... with one token');

# --- a token too big for the zone still reaches the retried request -------

# tokens of about 15 KB from their own token server and registry, and a
# zone whose share for tokens is a page or two
my $bport = free_port();
my $big_log = "$d/big-token.log";
my $bts = spawn(cmd => ['perl', "$ROOT/t/lib/tokenserver.pl", $bport,
                        "$d/signer.key", "$d/signer.crt", 'test-issuer',
                        $big_log, "$d/users", 300, 10000],
                stdout => "$d/bts.out");
ok(wait_port($bport, pid => $bts), 'big-token server up');
(my $big_auth = $token_auth) =~ s/:$tport\/token/:$bport\/token/;
my $breg = start_registry(config => $big_auth);
run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
       '--dest-creds', 'pusher:push-secret', $img->{ref},
       "docker://$breg->{host}/public/app:1");
my $big_port = free_port();
my $big = start_nginx(ports => [$big_port], http => <<"EOF");
    registry_zone 32k;
    registry big.test $breg->{url};
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    server {
        listen 127.0.0.1:$big_port;
        registry_default big.test;
        include $ROOT/registry_params;
    }
EOF
$t = http_get($bport, '/token?service=test-registry&scope='
              . 'repository:public/app:pull');
cmp_ok(length(decode_json($t->{body})->{token}), '>', 14000,
       'the token server hands out tokens of over 14000 bytes');
unlink $big_log;
$r = http_get($big_port, '/v2/public/app/manifests/1', headers => \@accept);
is($r->{status}, 200, 'a token the zone cannot keep: the manifest');
$r = http_get($big_port, '/v2/public/app/blobs/'
              . decode_json($r->{body})->{layers}[0]{digest});
is($r->{status}, 200, '... and a blob');
is(scalar(file_lines($big_log)), 2,
   '... with a fresh token for each request that went upstream');
like(slurp($big->{error_log}), qr/zone could not keep the token/,
     '... and the error log says why');
unlike(slurp($big->{error_log}), qr/\[(crit|alert|emerg)\]/,
       '... without crit lines');

# --- cached content while the upstream and its auth server are down -------

stop($ts);
stop($reg->{pid});
for my $l (@{ $m->{layers} }) {
    $r = http_get($port, "/v2/public/app/blobs/$l->{digest}");
    is($r->{status}, 200, "upstream and auth down: cached blob served");
    is($r->{headers}{'x-registry-cache'}[0], 'HIT', '... from the cache');
}

done_testing();
