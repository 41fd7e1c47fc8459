#!/usr/bin/perl

# Regional nodes (issue 12): an edge in front of two parents, side by side
# in one run on loopback ("make bench-regional").
#
#   origin      a CNCF distribution registry on 127.0.0.1, with BLOBS
#               distinct blobs of BLOB_MB MiB and one hit blob of HIT_MB
#               MiB pushed to bench/app;
#   parents     two mirrors (this module), on 127.0.0.2:P and 127.0.0.3:P,
#               registry_node_id parent-a and parent-b, each with
#               "registry docker.io <origin>";
#   edge        a mirror with "registry docker.io http://parents/docker.io"
#               (path prefix to the parents) and
#               upstream parents { hash $registry_cache_key consistent; ... }
#               so each digest has one owning parent; registry_node_id edge.
#
# Measured:
#   first pulls   the parents are warmed through a throwaway edge of the
#                 same config (so each blob is filled from the origin once,
#                 into the parent the hash picks); then each blob is pulled
#                 once through a fresh edge (an edge miss, a parent hit:
#                 its Cache-Status must say so) and once straight from the
#                 parent that holds it (a parent hit), the two in
#                 alternating order blob by blob; curl's time and speed per
#                 blob, medians, and bytes over summed time.
#   blob hits     wrk on the hit blob, cached at the edge, against a plain
#                 nginx (no module, same common settings, 2 workers)
#                 sending a static file of the same bytes; the same wrk
#                 threads and connections for each, after a warm-up run of
#                 each; ROUNDS rounds interleaved in a different order each
#                 round; medians and the ratio round by round.
#   origin cost   the origin's log: GETs of each blob (one each across the
#                 parents), and any request during the measured parts.
#   placement     the parents' cache folders: each blob in exactly one.
#
# Needs wrk and curl (apt-get install -y wrk curl, as "make bench") and
# docker-registry.  Every server is started here on loopback and stopped
# by pid at the end.  BLOBS, BLOB_MB, HIT_MB, ROUNDS, WRK_SECONDS,
# WRK_THREADS and WRK_CONNECTIONS scale it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use File::Path qw(make_path);
use List::Util qw(sum);
use Time::HiRes qw(time);
use RegistryTest;

my $blobs = $ENV{BLOBS} // 32;
my $blob_mb = $ENV{BLOB_MB} // 8;
my $hit_mb = $ENV{HIT_MB} // 16;
my $rounds = $ENV{ROUNDS} // 9;
my $wrk_s = $ENV{WRK_SECONDS} // 2;
my $threads = $ENV{WRK_THREADS} // 1;
my $conns = $ENV{WRK_CONNECTIONS} // 8;

for my $tool (qw(wrk curl docker-registry)) {
    run_out('sh', '-c', "command -v $tool") =~ /\S/
        or die "bench needs $tool (apt-get install -y wrk curl)\n";
}

my $started = time;
my $load = (split ' ', slurp('/proc/loadavg'))[0];
my $d = test_dir();
my $mib = 1024 * 1024;

sub random_file {
    my ($path, $mb) = @_;
    run_ok('sh', '-c', "head -c ${mb}M /dev/urandom > $path");
}

# curl one GET: status, bytes, seconds, bytes/s and the Cache-Status lines
sub pull {
    my ($url) = @_;
    my $out = run_out('curl', '-s', '-D', '-', '-o', '/dev/null', '-w',
                      '\n%{http_code} %{size_download} %{time_total} '
                      . '%{speed_download}', $url);
    my @lines = split /\r?\n/, $out;
    my ($code, $size, $secs, $speed) = split ' ', $lines[-1] // '';
    die "GET $url: $out\n" unless ($code // '') eq '200';
    my @cs = map { /^cache-status:\s*(.*)$/i ? $1 : () } @lines;
    return { size => $size, secs => $secs, speed => $speed,
             cache_status => join(', ', @cs) };
}

# --- origin and data ----------------------------------------------------------

print STDERR "setting up: origin registry, $blobs blobs of $blob_mb MiB, "
    . "a $hit_mb MiB hit blob\n";
my $origin = start_registry();

random_file("$d/blob.bin", $blob_mb);
my @digest;
for my $i (1 .. $blobs) {
    open my $fh, '>>', "$d/blob.bin" or die;
    print $fh "blob $i\n";              # a distinct digest per blob
    close $fh;
    push @digest, push_blob($origin, "$d/blob.bin");
}
random_file("$d/hit.bin", $hit_mb);
my $hit = push_blob($origin, "$d/hit.bin");
my $pushed = () = registry_requests($origin);

make_path("$d/static");
link "$d/hit.bin", "$d/static/blob"
    or run_ok('cp', "$d/hit.bin", "$d/static/blob");
chmod 0755, "$d/static";
chmod 0644, "$d/static/blob";

# --- the nodes ----------------------------------------------------------------

my $common = <<'EOF';
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
EOF

my $pport = free_port();
my %parent;
for (['parent-a', '127.0.0.2'], ['parent-b', '127.0.0.3']) {
    my ($id, $addr) = @$_;
    $parent{$id} = start_nginx(ports => ["$addr:$pport"], http => <<"EOF");
$common
    registry_node_id $id;
    registry docker.io $origin->{url};
    server {
        listen $addr:$pport;
$MIRROR_PARAMS
    }
EOF
    $parent{$id}{addr} = $addr;
}
my %addr_of = map { $_ => $parent{$_}{addr} } keys %parent;

sub edge {
    my ($id) = @_;
    my $port = free_port();
    my $ng = start_nginx(ports => [$port], http => <<"EOF");
$common
    registry_node_id $id;
    upstream parents {
        hash \$registry_cache_key consistent;
        server 127.0.0.2:$pport;
        server 127.0.0.3:$pport;
        keepalive 16;
    }
    registry docker.io http://parents/docker.io;
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
$MIRROR_PARAMS
    }
EOF
    $ng->{port} = $port;
    return $ng;
}

my $sport = free_port();
start_nginx(plain => 1, ports => [$sport], http => <<"EOF");
$common
    server {
        listen 127.0.0.1:$sport;
        root $d/static;
        default_type application/octet-stream;
    }
EOF

# --- warm the parents through a throwaway edge --------------------------------

print STDERR "warming the parents through a throwaway edge\n";
my $warm = edge('edge-warm');
my %warmed;
for my $dg (@digest, $hit) {
    my $p = pull("http://127.0.0.1:$warm->{port}/v2/bench/app/blobs/$dg");
    # "parent-x; fwd=miss; fwd-status=200, edge-warm; fwd=miss; ..."
    my ($owner) = $p->{cache_status} =~ /^(parent-[ab]); fwd=miss/
        or die "warm-up of $dg: Cache-Status $p->{cache_status}\n";
    $warmed{$dg} = $owner;
}
my $after_warm = () = registry_requests($origin);

# which parent holds each blob, from their cache folders
my %holders;
for my $id (sort keys %parent) {
    for my $key (keys %{ cache_entries("$parent{$id}{dir}/cache") }) {
        push @{ $holders{$1} }, $id if $key =~ /blob (sha256:[0-9a-f]{64})/;
    }
}
my %owner;
for my $dg (@digest, $hit) {
    my @h = @{ $holders{$dg} // [] };
    die "$dg held by " . (join(', ', @h) || 'no parent') . "\n"
        unless @h == 1 && $h[0] eq $warmed{$dg};
    $owner{$dg} = $h[0];
}

# --- first pulls: a fresh edge (parent hit) against the parent direct ---------

print STDERR "first pulls of $blobs blobs: fresh edge against the owning "
    . "parent direct\n";
my $edge = edge('edge');
my (%first, @bad);
for my $i (0 .. $#digest) {
    my $dg = $digest[$i];
    my %url = (
        edge => "http://127.0.0.1:$edge->{port}/v2/bench/app/blobs/$dg",
        direct => "http://$addr_of{$owner{$dg}}:$pport"
                  . "/v2/docker.io/bench/app/blobs/$dg");
    for my $t ($i % 2 ? qw(edge direct) : qw(direct edge)) {
        my $p = pull($url{$t});
        push @{ $first{$t} }, $p;
        my $want = $t eq 'edge' ? "$owner{$dg}; hit, edge; fwd=miss"
                                : "$owner{$dg}; hit";
        push @bad, "$t $dg: $p->{cache_status}"
            unless index($p->{cache_status}, $want) == 0;
    }
}
die "not the hits expected:\n" . join("\n", @bad) . "\n" if @bad;
my $after_first = () = registry_requests($origin);

# --- blob hits at the edge against static nginx -------------------------------

my %target = (
    static => "http://127.0.0.1:$sport/blob",
    edge => "http://127.0.0.1:$edge->{port}/v2/bench/app/blobs/$hit",
);
my @order = qw(static edge);
pull($target{edge});                                    # the edge's fill
my $c = pull($target{edge})->{cache_status};
die "the hit blob at the edge: Cache-Status $c\n" unless $c eq 'edge; hit';

sub wrk {
    my ($t, $seconds) = @_;
    my $out = run_ok('wrk', '-t', $threads, '-c', $conns, '-d', "${seconds}s",
                     '--timeout', '10s', $target{$t});
    my ($rps) = $out =~ /Requests\/sec:\s*([\d.]+)/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s*(\d+)/;
    my ($errors) = $out =~ /Socket errors:\s*(.*)/;
    die "wrk $t: errors\n$out" if $non2xx || $errors || !$rps;
    return $rps * $hit_mb;                              # MiB/s
}

print STDERR "blob hits: $rounds rounds of ${wrk_s}s each, wrk $threads "
    . "thread(s) $conns connections\n";
wrk($_, 1) for @order;                                  # warm-up
my %mibs;
my $before_hits = () = registry_requests($origin);
for my $i (1 .. $rounds) {
    my @o = @order;
    push @o, shift @o for 1 .. $i % @o;
    push @{ $mibs{$_} }, wrk($_, $wrk_s) for @o;
}
my @origin_log = registry_requests($origin);
my $during_hits = @origin_log - $before_hits;

# --- report -------------------------------------------------------------------

print machine_line($NGINX);
printf "edge -> upstream parents { hash \$registry_cache_key consistent; "
       . "127.0.0.2, 127.0.0.3 } -> origin (distribution)\n\n";

printf "first pulls: %d distinct blobs of %d MiB, each an edge miss and "
       . "a parent hit, curl one at a time\n\n", $blobs, $blob_mb;
print "| first pull | MiB/s (median) | ms per blob (median) | MiB/s (all "
    . "bytes / all time) | x direct |\n|---|---|---|---|---|\n";
my %agg;
for my $t (qw(direct edge)) {
    my @p = @{ $first{$t} };
    $agg{$t} = sum(map { $_->{size} } @p) / sum(map { $_->{secs} } @p);
}
for my $t (qw(direct edge)) {
    my @p = @{ $first{$t} };
    printf "| %s | %.0f | %.1f | %.0f | %.2f |\n",
           $t eq 'edge' ? 'through the fresh edge (parent hit)'
                        : 'from the owning parent direct (parent hit)',
           median(map { $_->{speed} } @p) / $mib,
           median(map { $_->{secs} } @p) * 1000,
           $agg{$t} / $mib, $agg{$t} / $agg{direct};
}
# blob by blob too: the two pulls of a blob ran back to back, so other
# load on the machine moves both
my @pair = map { $first{edge}[$_]{speed} / $first{direct}[$_]{speed} }
           0 .. $blobs - 1;
printf "
edge / direct: %.2fx the median blob (quartiles %.2f to %.2f)\n",
       median(@pair), (sort { $a <=> $b } @pair)[int($blobs / 4)],
       (sort { $a <=> $b } @pair)[int(3 * $blobs / 4)];

printf "\nblob hits: %d MiB blob, %d rounds of %ds (medians), wrk %d "
       . "thread(s) %d connections\n\n", $hit_mb, $rounds, $wrk_s,
       $threads, $conns;
my %med = map { $_ => median(@{ $mibs{$_} }) } @order;
print "| blob hit | MiB/s (median) | rounds | x static |\n"
    . "|---|---|---|---|\n";
for my $t (@order) {
    printf "| %s | %.0f | %s | %.2f |\n",
           $t eq 'edge' ? 'edge (cached at the edge)' : 'static nginx',
           $med{$t}, join(' ', map { sprintf '%.0f', $_ } @{ $mibs{$t} }),
           $med{$t} / $med{static};
}
my @ratio = map { $mibs{edge}[$_] / $mibs{static}[$_] } 0 .. $rounds - 1;
printf "\nedge / static: %.2fx the median round (rounds: %s)\n\n",
       median(@ratio), join(' ', map { sprintf '%.2f', $_ } @ratio);

# origin: GETs of each blob over the whole run
my %gets;
for (@origin_log[$pushed .. $#origin_log]) {
    $gets{$1}++ if m{^GET /v2/bench/app/blobs/(sha256:[0-9a-f]{64})$};
}
my @once = grep { ($gets{$_} // 0) == 1 } @digest, $hit;
my %held;
$held{$owner{$_}}++ for @digest, $hit;
printf "origin: %d requests in all after the pushes (%d while warming "
       . "the parents, %d during the first pulls, %d during the hit "
       . "rounds); %d of %d blobs fetched exactly once\n",
       @origin_log - $pushed, $after_warm - $pushed,
       $after_first - $after_warm, $during_hits, scalar @once,
       $blobs + 1;
printf "parents: %s; every blob in exactly one parent's cache\n",
       join(', ', map { "$_ holds " . ($held{$_} // 0) } sort keys %parent);
printf "run time: %.0f s; load average (1 min) at the start %s, at the "
       . "end %s\n", time - $started, $load,
       (split ' ', slurp('/proc/loadavg'))[0];
