#!/usr/bin/perl

# What a hostile token service can answer the mirror: a real distribution
# registry with token auth whose realm is a test server that answers every
# token request with the bytes a case needs.  The token is a member of the
# top-level object, named exactly, in well-formed JSON; an answer the mirror
# cannot take (no such token, or over 64 KiB) gives the client 502
# UNAVAILABLE with an OCI body, and nothing of it goes upstream as a token.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use RegistryTest;

my $d = test_dir();
run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
       '-keyout', "$d/signer.key", '-out', "$d/signer.crt", '-days', '2',
       '-subj', '/CN=token signer');

my $answer = "$d/answer.json";
my $token_log = "$d/token.log";
spew($answer, '{}');
my $tport = free_port();
my $ts = spawn(cmd => ['perl', "$ROOT/t/lib/tokenanswer.pl", $tport, $answer,
                       $token_log],
               stdout => "$d/ts.out");
ok(wait_port($tport, pid => $ts), 'hostile token server up');

my $reg = start_registry(config => token_auth($tport, $d));

# a plain nginx in front of the registry logs the Authorization it gets
my $fport = free_port();
my $front = start_nginx(plain => 1, ports => [$fport], http => <<"EOF");
    log_format auth '\$request "\$http_authorization"';
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/front.log auth;
        location / { proxy_pass $reg->{url}; }
    }
EOF

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry hostile.test http://127.0.0.1:$fport;
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    server {
        listen 127.0.0.1:$port;
        registry_default hostile.test;
        include $ROOT/registry_params;
    }
EOF

my $n = 0;

# asks for a distinct tags list (never cached, no token kept for it)
sub ask {
    my ($body) = @_;
    spew($answer, $body);
    unlink $token_log;
    return http_get($port, '/v2/public/app' . ++$n . '/tags/list');
}

# what the registry got for the last ask, once it has logged $want
# requests (2 when a token was tried)
sub sent {
    my ($want) = @_;
    my @sent;
    eventually(sub { (@sent = grep { /app$n\// }
                              file_lines("$front->{dir}/front.log"))
                     >= ($want // 1) });
    return @sent;
}

# --- the token is a member of the top-level object, named exactly ----------

for my $case (['{"data":{"token":"nested-token","expires_in":300}}',
               'only nested'],
              ['{"TOKEN":"upper-token","Access_Token":"upper-token"}',
               'named in other cases'],
              ['{"token":"one-token","token":"two-token"}', 'twice'],
              ['{"token":"a token"}', 'with a space'],
              ['{"token":"trailing-token"} {}', 'with bytes after the JSON'])
{
    my ($body, $what) = @$case;
    my $r = ask($body);
    is($r->{status}, 502, "a token answer with the token $what: 502");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE',
       '... UNAVAILABLE');
    is(scalar file_lines($token_log), 1, '... after one token request');
    is(scalar(grep { /Bearer/ } sent()), 0, '... and no token went upstream')
        or diag explain [sent()];
}

my $r = ask('{"data":{"token":"nested-token"},"token":"top-token",'
            . '"expires_in":300}');
is($r->{status}, 403, 'a top-level token beside a nested one: used, and '
                      . 'the registry refuses it');
is_deeply([map { /"(Bearer [^"]*)"$/ ? $1 : () } sent(2)],
          ['Bearer top-token'], '... the top-level token went upstream');
$r = ask('{"token":"esc\\/aped\\u002dtoken"}');
is_deeply([map { /"(Bearer [^"]*)"$/ ? $1 : () } sent(2)],
          ['Bearer esc/aped-token'], 'an escaped token went unescaped');

# --- answers too big for the subrequest buffer --------------------------------

for my $framing ('length', 'chunked') {
    unlink "$answer.chunked";
    spew("$answer.chunked", '') if $framing eq 'chunked';
    $r = ask('{"token":"' . ('a' x (100 * 1024)) . '","expires_in":300}');
    is($r->{status}, 502, "a token answer of 100 KiB ($framing): 502");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE',
       '... with an OCI UNAVAILABLE body');
    is(scalar file_lines($token_log), 1, '... after one token request');
    is(scalar(grep { /Bearer/ } sent()), 0, '... and no token went upstream');
}
unlink "$answer.chunked";
like(slurp($ng->{error_log}), qr/too big subrequest response/,
     'the error log says why');

done_testing();
