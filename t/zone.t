#!/usr/bin/perl

# The module's one shared memory zone: created only when a registry is
# configured, sized by registry_zone, one share of it for each kind of
# record.  A flood of distinct tokens in a small zone evicts the least
# recently used tokens, logs no crit line, and the token in use stays.
# Keys with the same crc32 are told apart.
# (Tokens and counters kept across a reload: t/auth.t and t/verify.t.)

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use RegistryTest;

my $d = test_dir();

# shared mappings of a running nginx master, by size in KiB
sub shared_maps {
    my ($pid) = @_;
    my @sizes;
    no warnings 'portable';    # 64-bit addresses
    for (split /\n/, slurp("/proc/$pid/maps")) {
        next unless /^([0-9a-f]+)-([0-9a-f]+) \S{3}s .*\/dev\/zero/;
        push @sizes, (hex($2) - hex($1)) / 1024;
    }
    return @sizes;
}

# --- no zone without a registry ---------------------------------------------

my @conf = (<<'EOF', <<'EOF');
    server { listen 127.0.0.1:%PORT%; location / { return 204; } }
EOF
    registry_zone 1028k;
    server { listen 127.0.0.1:%PORT%; location / { return 204; } }
EOF

my @plain_maps;
for my $i (0, 1, 2) {
    my $port = free_port();
    (my $http = $conf[$i ? 1 : 0]) =~ s/%PORT%/$port/;
    my $ng = start_nginx(ports => [$port], http => $http,
                         plain => $i == 0);
    my @maps = shared_maps($ng->{pid});
    if ($i == 0) {
        @plain_maps = @maps;
        ok(scalar @plain_maps, 'nginx without the module: '
                               . scalar(@plain_maps) . ' shared mappings');
    } elsif ($i == 1) {
        is(scalar @maps, scalar @plain_maps,
           'module loaded, no registry: no more shared memory than without');
        ok(!grep({ $_ == 1028 } @maps), '... and none of registry_zone\'s size');
    } else {
        # a second one at once: nothing of the module's stands in the way
        is(http_get($port, '/')->{status}, 204,
           'another nginx with the module and no registry runs beside it');
    }
}

# --- one zone, of registry_zone's size, with registries ---------------------

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry_zone 1028k;
    registry one.test http://127.0.0.1:1;
    registry two.test http://127.0.0.1:1;
    server { listen 127.0.0.1:$port; location / { return 204; } }
EOF
my @maps = shared_maps($ng->{pid});
is(scalar(grep { $_ == 1028 } @maps), 1,
   'two registries: one zone of registry_zone\'s size');
is(scalar @maps, scalar(@plain_maps) + 1, '... and no other');

# a reload to a configuration without registries: the counter is empty
my $nport = free_port();
spew("$ng->{dir}/nginx.conf", nginx_conf(<<"EOF") =~ s/\@DIR\@/$ng->{dir}/gr);
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "[\$registry_digest_mismatches]"; }
    }
EOF
my $starts = () = slurp($ng->{error_log}) =~ /start worker process/g;
kill 'HUP', $ng->{pid};
ok(eventually(sub {
       (() = slurp($ng->{error_log}) =~ /start worker process/g)
           >= $starts + 2 }, 30), 'reloaded without registries');
ok(eventually(sub { http_get($port, '/')->{body} eq '[]' }, 30),
   '... the counter is empty, not read from a zone that is gone');
unlike(slurp($ng->{error_log}), qr/\[(alert|crit|emerg)\]|signal 11/,
       '... and no worker crashed');

# --- directive ----------------------------------------------------------------

my $bad = "$d/bad.conf";
for my $case (['registry_zone 16k;', 'is too small'],
              ['registry_zone lots;', 'invalid zone size'],
              ['registry_zone 1m; registry_zone 2m;', 'is duplicate'],
              ['server { registry_zone 1m; }', 'not allowed here'])
{
    my ($http, $want) = @$case;
    my $conf = nginx_conf("registry a.test http://127.0.0.1:1;\n$http");
    $conf =~ s/\@DIR\@/$d/g;
    spew($bad, $conf);
    my $out = run_out($NGINX, '-t', '-c', $bad, '-e', '/dev/null');
    like($out, qr/\Q$want\E/, "nginx -t refuses: $want");
}
my $conf = nginx_conf("registry a.test http://127.0.0.1:1;\n"
                      . "registry_zone 32k;");
$conf =~ s/\@DIR\@/$d/g;
spew($bad, $conf);
like(run_out($NGINX, '-t', '-c', $bad, '-e', '/dev/null'),
     qr/syntax is ok/, 'registry_zone 32k: the smallest zone');

# --- a flood of tokens in a small zone ---------------------------------------

run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
       '-keyout', "$d/signer.key", '-out', "$d/signer.crt", '-days', '2',
       '-subj', '/CN=token signer');
my $tport = free_port();
my $token_log = "$d/token.log";
my $ts = spawn(cmd => ['perl', "$ROOT/t/lib/tokenserver.pl", $tport,
                       "$d/signer.key", "$d/signer.crt", 'test-issuer',
                       $token_log],
               stdout => "$d/ts.out");
ok(wait_port($tport, pid => $ts), 'token server up');
my $reg = start_registry(config => token_auth($tport, $d));

# 64k: a share of three pages for tokens, room for a few of these (2 KB)
$port = free_port();
$ng = start_nginx(ports => [$port], http => <<"EOF");
    registry_zone 64k;
    registry docker.io $reg->{url};
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF

sub fetches {
    my ($name) = @_;
    return scalar grep { $_ eq "- repository:public/$name:pull" }
                  file_lines($token_log);
}

# a distinct tags list each time: never from the cache, always upstream
my $n = 0;
sub tags { return http_get($port, "/v2/public/$_[0]/tags/list?n=" . ++$n) }

is(tags('app')->{status}, 404, 'a tags list upstream, with a token');
for my $i (1 .. 20) {
    tags("flood$i");
    tags('app');
}
is(fetches('app'), 1,
   '20 other tokens later: the token in use was kept, fetched once');
is(fetches('flood1'), 1, 'the oldest flood token: fetched once');
tags('flood1');
is(fetches('flood1'), 2, '... and evicted: asked again, fetched again');
unlike(slurp($ng->{error_log}), qr/\[(crit|alert|emerg)\]|no memory/,
       'no crit line, no "no memory" in the error log');

# --- keys with one crc32 -------------------------------------------------------

# "docker.io repository:public/0xyf3rpz5c:pull" and "...ga87t0m5rv..."
# have the same crc32 (0xb278d3c7), "...c1..." a higher one: kept in this
# order, a tree that sends equal hashes right and is rotated after the
# third loses the first
$port = free_port();
$ng = start_nginx(ports => [$port], http => <<"EOF");
    registry docker.io $reg->{url};
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF
my @names = ('0xyf3rpz5c', 'ga87t0m5rv', 'c1');
tags($_) for @names;
tags($_) for @names;
is_deeply([map { fetches($_) } @names], [1, 1, 1],
          'tokens whose keys share a crc32: each found again, fetched once');

done_testing();
