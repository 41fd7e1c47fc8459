#!/usr/bin/perl

# What counting costs (issue 13), side by side in one run on loopback
# ("make bench-metrics"): two mirrors, A and B, the same config (2
# workers, the same registry, cache and logs) but for the metrics:
#
#   A  metrics on    registry_counters on (the default) and a
#                    "location = /metrics { registry_metrics; }";
#   B  metrics off   registry_counters off, no metrics location.
#
# wrk on a manifest hit by digest (the manifest each mirror filled once,
# X-Registry-Cache: HIT), the same threads and connections for both, a
# warm-up run of each, then ROUNDS short rounds (9 of 2 s) alternating
# which goes first, so that other load on the machine falls on both alike;
# medians, and the ratio round by round.  Goal: A at least 0.95x of B.
# At the end A's /metrics must count every request wrk made to it (the
# counting was on and lost nothing across workers), and B must answer no
# metrics.
#
# Needs wrk and curl (apt-get install -y wrk curl, as "make bench") and
# what the test suite needs for a registry (docker-registry skopeo umoci).
# Every server is started here on 127.0.0.1 and stopped by pid at the
# end.  ROUNDS, WRK_SECONDS, WRK_THREADS and WRK_CONNECTIONS scale it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use RegistryTest;

my $rounds = $ENV{ROUNDS} // 9;
my $wrk_s = $ENV{WRK_SECONDS} // 2;
my $threads = $ENV{WRK_THREADS} // 1;
my $conns = $ENV{WRK_CONNECTIONS} // 32;

for my $tool (qw(wrk curl docker-registry skopeo umoci)) {
    run_out('sh', '-c', "command -v $tool") =~ /\S/
        or die "bench needs $tool (apt-get install -y wrk curl)\n";
}

print STDERR "setting up: registry, mirror A (metrics on), "
    . "mirror B (metrics off)\n";
my $reg = start_registry();
my $img = build_image(layers => [{ app => "bench\n" }]);
push_image($img, $reg, 'bench/app:v1');
my $type = 'application/vnd.oci.image.manifest.v1+json';
my $accept = "Accept: $type";
my $digest = upstream_digest($reg, 'bench/app', 'v1', $type)
    or die "no digest for bench/app:v1\n";
my $path = "/v2/bench/app/manifests/$digest";

my %mirror;
for my $t (qw(A B)) {
    my $port = free_port();
    my $on = $t eq 'A';
    my $metrics = $on ? <<'LOC' : '';
        location = /metrics {
            registry_metrics;
            allow 127.0.0.1;
            deny all;
        }
LOC
    my $http = ($on ? '' : "    registry_counters off;\n") . <<"CONF";
    registry bench http://$reg->{host};
    registry_default bench;
    server {
        listen 127.0.0.1:$port;
$MIRROR_PARAMS
$metrics
    }
CONF
    $mirror{$t} = { port => $port,
                    ng => start_nginx(http => $http, ports => [$port]) };
    my $r;
    for (1 .. 3) {                              # the fill, then hits
        $r = http_get($port, $path, headers => [$accept]);
        die "mirror $t: $path: $r->{status}\n" unless $r->{status} == 200;
    }
    my $cache = $r->{headers}{'x-registry-cache'}[0] // '-';
    die "mirror $t: $path not a hit: $cache\n" unless $cache eq 'HIT';
}

sub manifest_hits {
    my $r = http_get($mirror{A}{port}, '/metrics');
    die "A /metrics: $r->{status}\n" unless $r->{status} == 200;
    return parse_metrics($r->{body})->{'nginx_registry_requests_total'
        . '{cache="hit",kind="manifest",registry="bench"}'} // 0;
}

my %made = (A => 0, B => 0);
sub wrk {
    my ($t, $seconds) = @_;
    my $out = run_ok('wrk', '-t', $threads, '-c', $conns, '-d', "${seconds}s",
                     '-H', $accept,
                     "http://127.0.0.1:$mirror{$t}{port}$path");
    my ($rps) = $out =~ /Requests\/sec:\s*([\d.]+)/;
    my ($n) = $out =~ /(\d+) requests in/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s*(\d+)/;
    my ($errors) = $out =~ /Socket errors:\s*(.*)/;
    die "wrk $t: errors\n$out" if $non2xx || $errors || !$rps;
    $made{$t} += $n;
    return $rps;
}

print STDERR "manifest hits: $rounds rounds of ${wrk_s}s each, wrk "
    . "$threads thread(s) $conns connections\n";
my $before = manifest_hits();
wrk($_, 1) for qw(A B);                                 # warm-up
my %rps;
for my $i (1 .. $rounds) {
    my @o = $i % 2 ? qw(A B) : qw(B A);
    push @{ $rps{$_} }, wrk($_, $wrk_s) for @o;
}

# wrk counts the requests it completed; ones in flight when it stopped
# are still answered (and counted) after: a bounded wait for the count
my $counted;
eventually(sub { ($counted = manifest_hits() - $before) >= $made{A} });
my $b_metrics = http_get($mirror{B}{port}, '/metrics');

# --- report -------------------------------------------------------------------

print machine_line('nginx');
printf "manifest hits by digest, plain HTTP: %d rounds (medians), wrk %ds "
       . "%d thread(s) %d connections, 2 workers each\n\n", $rounds, $wrk_s,
       $threads, $conns;

my %label = (A => 'A: metrics on (registry_counters on, /metrics)',
             B => 'B: metrics off (registry_counters off)');
my %med = map { $_ => median(@{ $rps{$_} }) } qw(A B);
print "| manifest hit | requests/s (median) | rounds | x metrics off |\n"
    . "|---|---|---|---|\n";
for my $t (qw(A B)) {
    printf "| %s | %.0f | %s | %.3f |\n", $label{$t}, $med{$t},
           join(' ', map { sprintf '%.0f', $_ } @{ $rps{$t} }),
           $med{$t} / $med{B};
}
my @ratio = map { $rps{A}[$_] / $rps{B}[$_] } 0 .. $rounds - 1;
printf "\nmetrics on / off: %.3fx of the medians, %.3fx the median round "
       . "(rounds: %s); goal: at least 0.95x\n", $med{A} / $med{B},
       median(@ratio), join(' ', map { sprintf '%.3f', $_ } @ratio);
# at most one request in flight per connection when each run stopped
printf "A's /metrics counted %d manifest hits during the runs, wrk "
       . "completed %d: %s\n", $counted, $made{A},
       $counted >= $made{A} && $counted <= $made{A} + $conns * ($rounds + 1)
           ? 'every one counted' : 'MISMATCH';
printf "B's /metrics: %s\n", $b_metrics->{status} == 200
       ? 'answered 200 (it should not)'
       : "$b_metrics->{status}, no metrics location";
