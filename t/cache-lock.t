#!/usr/bin/perl

# Collapsed fills: 20 clients asking at once for the same cold blob, whose
# fill takes over ten seconds (a throttled upstream), cause exactly one
# upstream GET, and every client gets the whole, correct blob.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use RegistryTest;

my $clients = 20;
my $rate = 100 * 1024;           # bytes/s the throttle lets through

my $reg = start_registry();
my $noise = join '', map { Digest::SHA::sha256("slow $_") } 1 .. 40000;
my $img = build_image(layers => [{ slow => $noise }]);
push_image($img, $reg, 'library/slow:1');

my $tport = free_port();
my $throttle = start_nginx(ports => [$tport], http => <<"EOF");
    server {
        listen 127.0.0.1:$tport;
        access_log \@DIR\@/throttle.log;
        location / {
            proxy_pass $reg->{url};
            limit_rate $rate;
        }
    }
EOF

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry docker.io http://127.0.0.1:$tport;
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF

my $m = decode_json(http_get($reg->{port}, '/v2/library/slow/manifests/1',
    headers => ['Accept: application/vnd.oci.image.manifest.v1+json'])->{body});
my $blob = $m->{layers}[0]{digest};
my $size = $m->{layers}[0]{size};
diag(sprintf 'blob of %d bytes at %d bytes/s: about %.0f s to fill',
     $size, $rate, $size / $rate);

my $out = test_dir() . '/clients';
mkdir $out;
my $t0 = time;
my @pids;
for my $i (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $r = http_get($port, "/v2/library/slow/blobs/$blob", timeout => 120);
        spew("$out/$i", join ' ', $r->{status}, length $r->{body},
             'sha256:' . sha256_hex($r->{body}),
             ($r->{headers}{'x-registry-cache'} // ['-'])->[0]);
        POSIX::_exit(0);
    }
    push @pids, $pid;
}

# wait for every client, bounded
my $deadline = time + 180;
my %left = map { $_ => 1 } @pids;
while (%left && time < $deadline) {
    for my $pid (keys %left) {
        delete $left{$pid} if waitpid($pid, WNOHANG) == $pid;
    }
    sleep 0.1 if %left;
}
kill 'KILL', keys %left;
is(scalar keys %left, 0, "all $clients clients finished");
diag(sprintf 'all clients done after %.1f s', time - $t0);

my %status;
for my $i (1 .. $clients) {
    my ($code, $len, $digest, $cache) = split ' ', slurp("$out/$i");
    is("$code $len $digest", "200 $size $blob", "client $i: whole, correct");
    $status{$cache}++;
}
is($status{MISS}, 1, 'one client filled the cache');
diag('cache status of the clients: '
     . join ', ', map { "$_ $status{$_}" } sort keys %status);

is(at_least(1, sub { scalar grep { m{^GET /v2/library/slow/blobs/\Q$blob\E$} }
                        registry_requests($reg) }),
   1, 'exactly one upstream blob GET');
is(at_least(1, sub { scalar grep { m{"GET /v2/library/slow/blobs/} }
                        file_lines("$throttle->{dir}/throttle.log") }),
   1, 'exactly one GET through the throttle');

done_testing();
