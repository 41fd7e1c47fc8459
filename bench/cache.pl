#!/usr/bin/perl

# Cache benchmark, side by side in one run on loopback ("make bench"):
#
#   blob hits     a cached blob downloaded with curl, rounds interleaved
#                 across: static nginx sending the same file (sendfile),
#                 this module, a hand-written nginx proxy_cache config,
#                 CNCF distribution in proxy mode (proxy.remoteurl);
#   manifest hits wrk on a cached tag manifest, against a static file of
#                 the same bytes;
#   cold fills    a blob no cache has seen, through each, and straight
#                 from the origin registry.
#
# Every server is started here on 127.0.0.1 and stopped by pid at the end.
# BLOB_MB, COLD_MB, ROUNDS and WRK_SECONDS scale it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Digest::SHA;
use File::Path qw(make_path);
use List::Util qw(sum);
use RegistryTest;

my $blob_mb = $ENV{BLOB_MB} // 512;
my $cold_mb = $ENV{COLD_MB} // 128;
my $rounds = $ENV{ROUNDS} // 5;
my $wrk_s = $ENV{WRK_SECONDS} // 5;

for my $tool (qw(wrk curl docker-registry skopeo umoci)) {
    run_out('sh', '-c', "command -v $tool") =~ /\S/
        or die "bench needs $tool (apt-get install -y wrk curl)\n";
}

my $d = test_dir();

sub random_file {
    my ($path, $mb) = @_;
    run_ok('sh', '-c', "head -c ${mb}M /dev/urandom > $path");
}



sub download {
    my ($url, @h) = @_;
    my $out = run_out('curl', '-s', '-o', '/dev/null', '-w',
                      '%{http_code} %{size_download} %{speed_download}',
                      (map { ('-H', $_) } @h), $url);
    my ($code, $size, $speed) = split ' ', $out;
    die "GET $url: $out\n" unless $code eq '200';
    return $speed;
}

# --- origin and data --------------------------------------------------------

print STDERR "setting up: origin registry, ${blob_mb} MiB hit blob, "
    . "cold blobs of ${cold_mb} MiB\n";
my $origin = start_registry();
my $img = build_image(layers => [{ small => "bench\n" }]);
push_image($img, $origin, 'bench/app:v1');

random_file("$d/hit.bin", $blob_mb);
my $hit = push_blob($origin, "$d/hit.bin");

my @targets = qw(module plain distribution);
random_file("$d/cold.bin", $cold_mb);
my %cold;
for my $t (@targets, 'origin') {
    for my $i (1 .. $rounds) {
        open my $fh, '>>', "$d/cold.bin" or die;
        print $fh "$t $i\n";            # a distinct digest per fill
        close $fh;
        push @{ $cold{$t} }, push_blob($origin, "$d/cold.bin");
    }
}

my $accept = 'Accept: application/vnd.oci.image.manifest.v1+json';
my $manifest = http_get($origin->{port}, '/v2/bench/app/manifests/v1',
                        headers => [$accept])->{body};
make_path("$d/static");
spew("$d/static/manifest", $manifest);
link "$d/hit.bin", "$d/static/blob" or run_ok('cp', "$d/hit.bin",
                                               "$d/static/blob");
chmod 0755, "$d/static";
chmod 0644, "$d/static/manifest", "$d/static/blob";

# --- the contenders ----------------------------------------------------------

my %port = map { $_ => free_port() } qw(static module plain);
my $common = <<'EOF';
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    access_log off;
EOF

start_nginx(plain => 1, ports => [$port{static}], http => <<"EOF");
$common
    server {
        listen 127.0.0.1:$port{static};
        root $d/static;
        default_type application/vnd.oci.image.manifest.v1+json;
    }
EOF

start_nginx(ports => [$port{module}], http => <<"EOF");
$common
    registry docker.io $origin->{url};
    server {
        listen 127.0.0.1:$port{module};
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF

# what an operator writes by hand today
start_nginx(plain => 1, ports => [$port{plain}], http => <<"EOF");
$common
    proxy_cache_path \@DIR\@/plain levels=1:2 keys_zone=plain:64m
                     use_temp_path=off;
    server {
        listen 127.0.0.1:$port{plain};
        location /v2/ {
            proxy_pass $origin->{url};
            proxy_cache plain;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
        }
    }
EOF

my $dist = start_registry(config => <<"EOF");
proxy:
  remoteurl: $origin->{url}
EOF
$port{distribution} = $dist->{port};

my %base = map { $_ => "http://127.0.0.1:$port{$_}" } keys %port;

# --- blob hits, interleaved --------------------------------------------------

my %blob;
for my $t (@targets) {
    download("$base{$t}/v2/bench/app/blobs/$hit");      # fill
}
for my $i (1 .. $rounds) {
    # a different order each round, so no contender always goes first
    my @order = ('static', @targets);
    push @order, shift @order for 1 .. $i % @order;
    for my $t (@order) {
        my $path = $t eq 'static' ? '/blob' : "/v2/bench/app/blobs/$hit";
        push @{ $blob{$t} }, download("$base{$t}$path");
    }
}

# --- manifest hits with wrk ---------------------------------------------------

my %rps;
for my $t ('static', @targets) {
    my $path = $t eq 'static' ? '/manifest' : '/v2/bench/app/manifests/v1';
    download("$base{$t}$path", $accept);                  # fill
    my $out = run_ok('wrk', '-t', '1', '-c', '32', '-d', "${wrk_s}s",
                     '-H', $accept, "$base{$t}$path");
    my ($rps) = $out =~ /Requests\/sec:\s*([\d.]+)/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s*(\d+)/;
    die "wrk $t: errors\n$out" if $non2xx;
    $rps{$t} = $rps;
}

# --- cold fills ---------------------------------------------------------------

my %cold_speed;
for my $i (0 .. $rounds - 1) {
    my @order = ('origin', @targets);
    push @order, shift @order for 1 .. $i % @order;
    for my $t (@order) {
        my $url = $t eq 'origin' ? $origin->{url} : $base{$t};
        push @{ $cold_speed{$t} },
            download("$url/v2/bench/app/blobs/$cold{$t}[$i]");
    }
}

# --- report ---------------------------------------------------------------------

my $mib = 1024 * 1024;
print machine_line('nginx');
printf "blob %d MiB, cold blobs %d MiB, %d rounds (medians), wrk %ds "
       . "1 thread 32 connections\n\n", $blob_mb, $cold_mb, $rounds, $wrk_s;

printf "%-28s %12s %12s %12s %12s\n", '', 'static', @targets;
printf "%-28s %12.0f %12.0f %12.0f %12.0f\n", 'blob hit MiB/s',
       map { median(@{ $blob{$_} }) / $mib } 'static', @targets;
printf "%-28s %12s %12.2f %12.2f %12.2f\n", '  x static nginx (goal 0.95)',
       '1.00', map { median(@{ $blob{$_} }) / median(@{ $blob{static} }) }
       @targets;
printf "%-28s %12.0f %12.0f %12.0f %12.0f\n", 'manifest hit requests/s',
       map { $rps{$_} } 'static', @targets;
printf "%-28s %12s %12.2f %12.2f %12.2f\n", '  x static small (goal 0.8)',
       '1.00', map { $rps{$_} / $rps{static} } @targets;
printf "%-28s %12.0f %12.0f %12.0f %12.0f\n", 'cold fill MiB/s',
       map { median(@{ $cold_speed{$_} }) / $mib } 'origin', @targets;
printf "%-28s %12s\n", '  (first column: origin direct)', '';
