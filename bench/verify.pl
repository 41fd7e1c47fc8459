#!/usr/bin/perl

# Verified-fill benchmark, side by side in one run on loopback
# ("make bench-verify"):
#
#   origin direct   the registry's own throughput for a blob (curl)
#   sha256          one core's SHA-256 throughput (openssl speed, EVP)
#   cold fills      distinct cold blobs through the mirror with
#                   registry_verify on and off, with the shipped proxy
#                   buffers and with nginx's defaults; rounds interleaved
#   RSS             the growth of the worker's resident memory while one
#                   cold 1 GiB blob fills (sampled every 20 ms)
#
# COLD_MB, BIG_MB and ROUNDS scale it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Digest::SHA;
use Time::HiRes qw(time sleep);
use RegistryTest;

my $cold_mb = $ENV{COLD_MB} // 256;
my $big_mb = $ENV{BIG_MB} // 1024;
my $rounds = $ENV{ROUNDS} // 3;

my $d = test_dir();
my $mib = 1024 * 1024;



sub download {
    my ($url) = @_;
    my $out = run_out('curl', '-s', '-o', '/dev/null', '-w',
                      '%{http_code} %{speed_download}', $url);
    my ($code, $speed) = split ' ', $out;
    die "GET $url: $out\n" unless $code eq '200';
    return $speed;
}

print STDERR "setting up: cold blobs of $cold_mb MiB, a $big_mb MiB blob\n";
my $origin = start_registry();
run_ok('sh', '-c', "head -c ${cold_mb}M /dev/urandom > $d/cold.bin");

my @variants = ('origin', 'verify on', 'verify off', 'verify on, default buffers');
my %cold;
for my $v (@variants) {
    for my $i (1 .. $rounds) {
        open my $fh, '>>', "$d/cold.bin" or die;
        print $fh "$v $i\n";
        close $fh;
        push @{ $cold{$v} }, push_blob($origin, "$d/cold.bin");
    }
}
unlink "$d/cold.bin";
run_ok('sh', '-c', "head -c ${big_mb}M /dev/urandom > $d/big.bin");
my $big = push_blob($origin, "$d/big.bin");
unlink "$d/big.bin";

# the third server gets registry_params without its proxy buffer lines:
# nginx's defaults, to show what the shipped ones buy
my $params = slurp("$ROOT/registry_params");
$params =~ s/^\s*proxy_(buffers|buffer_size|busy_buffers_size)\b[^;]*;\n//mg;
spew("$d/registry_params.default", $params);

my %port = map { $_ => free_port() } @variants[1 .. 3];
my $ng = start_nginx(ports => [values %port], http => <<"EOF");
    access_log off;
    registry docker.io $origin->{url};
    server {
        listen 127.0.0.1:$port{'verify on'};
        registry_default docker.io;
        include $ROOT/registry_params;
    }
    server {
        listen 127.0.0.1:$port{'verify off'};
        registry_default docker.io;
        registry_verify off;
        include $ROOT/registry_params;
    }
    server {
        listen 127.0.0.1:$port{'verify on, default buffers'};
        registry_default docker.io;
        include $d/registry_params.default;
    }
EOF

my %speed;
for my $i (0 .. $rounds - 1) {
    my @order = @variants;
    push @order, shift @order for 1 .. $i % @order;
    for my $v (@order) {
        my $base = $v eq 'origin' ? $origin->{url}
                                  : "http://127.0.0.1:$port{$v}";
        push @{ $speed{$v} }, download("$base/v2/bench/app/blobs/$cold{$v}[$i]");
    }
}

# one core's SHA-256, through the same EVP interface the module uses
my $speed = run_ok('openssl', 'speed', '-seconds', '3', '-bytes', '1048576',
                   '-evp', 'sha256');
my ($kbs) = $speed =~ /^sha256\s+([\d.]+)k/m;
my $sha = $kbs * 1000;

# RSS of the workers while a 1 GiB blob fills
my @workers = grep { /^\d+$/ } split ' ',
    run_out('pgrep', '-P', $ng->{pid});
sub rss {
    my %r;
    for my $w (@workers) {
        ($r{$w}) = slurp("/proc/$w/status") =~ /^VmRSS:\s+(\d+)/m;
    }
    return \%r;
}
my $base = rss();
my %peak = %$base;
my $pid = fork // die;
if ($pid == 0) {
    download("http://127.0.0.1:$port{'verify on'}/v2/bench/app/blobs/$big");
    POSIX::_exit(0);
}
my $t0 = time;
while (waitpid($pid, POSIX::WNOHANG()) != $pid && time - $t0 < 600) {
    my $now = rss();
    for (keys %$now) { $peak{$_} = $now->{$_} if $now->{$_} > $peak{$_} }
    sleep 0.02;
}
my $fill = time - $t0;
my ($growth) = sort { $b <=> $a } map { $peak{$_} - $base->{$_} } @workers;

my $cpu = (grep { /model name/ } split /\n/, slurp('/proc/cpuinfo'))[0] // '';
$cpu =~ s/.*:\s*//;
printf "machine: %s, %d cores; cold blobs %d MiB, %d rounds (medians)\n\n",
       $cpu, scalar(grep { /^processor/ } split /\n/, slurp('/proc/cpuinfo')),
       $cold_mb, $rounds;
my $limit = median(@{ $speed{origin} }) < $sha ? median(@{ $speed{origin} })
                                                : $sha;
printf "%-34s %8.0f MiB/s\n", 'origin direct', median(@{ $speed{origin} }) / $mib;
printf "%-34s %8.0f MiB/s\n", 'sha256, one core (openssl, EVP)', $sha / $mib;
for my $v (@variants[1 .. 3]) {
    printf "%-34s %8.0f MiB/s  %.2fx of the lower limit\n", "cold fill, $v",
           median(@{ $speed{$v} }) / $mib, median(@{ $speed{$v} }) / $limit;
}
printf "%-34s %8.1f MiB (goal 16), %d MiB filled in %.1f s\n",
       "worker RSS growth, $big_mb MiB fill", $growth / 1024, $big_mb, $fill;
