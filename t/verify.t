#!/usr/bin/perl

# Verified fills: every blob and by-digest manifest fill, and every tag
# manifest that comes with Docker-Content-Digest, is hashed while it
# streams.  A body that does not match is never cached and never reaches a
# client whole (with Content-Length and chunked, bodies much larger than
# the proxy buffers); the error log says who sent what, a shared counter
# counts it.  Bodies cut short are never cached; blobs without framing are
# refused (502).  With verification, digest keys are shared across
# registries; without it, not.  Once the upstream is repaired, the next
# pull fills and is served.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP;
use RegistryTest;

my $reg = start_registry();
my $noise = join '', map { Digest::SHA::sha256("verify $_") } 1 .. 65536;
my $img = build_image(layers => [{ big => $noise }]);
push_image($img, $reg, 'library/app:1');
push_image(build_image(layers => [{ other => "other\n" }]), $reg,
           'library/tagged:1');
push_image(build_image(layers => [{ cut => scalar reverse $noise }]), $reg,
           'library/cut:1');

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json');
my $m = decode_json(http_get($reg->{port}, '/v2/library/app/manifests/1',
                             headers => \@accept)->{body});
my ($blob, $size) = @{ $m->{layers}[0] }{qw(digest size)};
(my $hex = $blob) =~ s/^sha256://;
my $data = "$reg->{dir}/data/docker/registry/v2/blobs/sha256/"
         . substr($hex, 0, 2) . "/$hex/data";
ok(-f $data, "the registry's blob file ($size bytes)");
my $cm = decode_json(http_get($reg->{port}, '/v2/library/cut/manifests/1',
                              headers => \@accept)->{body});
my ($cut_blob, $cut_size) = @{ $cm->{layers}[0] }{qw(digest size)};

# helpers: a blob host (chunked, close-delimited) and a relay that cuts
my $hostdir = test_dir() . '/blobhost';
make_path($hostdir);
my $hport = free_port();
my $host = spawn(cmd => ['perl', "$ROOT/t/lib/blobhost.pl", $hport,
                         $hostdir]);
ok(wait_port($hport, pid => $host), 'blob host up');
my $rport = free_port();
my $relay = spawn(cmd => ['perl', "$ROOT/t/lib/relay.pl", $rport,
                          $reg->{port}, int($cut_size / 2)]);
ok(wait_port($rport, pid => $relay), 'relay up');

my $port = free_port();
my $port_off = free_port();
my $ng = start_nginx(ports => [$port, $port_off], http => <<"EOF");
    registry docker.io    $reg->{url};
    registry other.io     $reg->{url};
    registry chunked.test http://127.0.0.1:$hport/chunked;
    registry close.test   http://127.0.0.1:$hport/close;
    registry cut.test     http://127.0.0.1:$rport;

    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
$MIRROR_PARAMS
    }

    server {
        listen 127.0.0.1:$port_off;
        registry_default docker.io;
        registry_verify off;
        include $ROOT/registry_params;
    }
EOF
my $cache = "$ng->{dir}/cache";

sub get { return http_get($port, @_) }
sub mismatches { return mismatches_at($port) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub temp_files {
    return grep { m{/[^/]+\.\d+$} } split /\n/,
           run_out('find', $cache, '-type', 'f');
}

is(mismatches(), '0', 'counter starts at 0');

# --- a corrupt blob in a real registry, Content-Length --------------------

flip_bit($data, int($size / 2));
my $r = get("/v2/docker.io/library/app/blobs/$blob");
is($r->{status}, 200, 'corrupt blob: the response had begun');
is($r->{headers}{'content-length'}[0], $size, 'Content-Length announced');
cmp_ok(length $r->{body}, '<', $size, 'client got fewer bytes than that');
diag(sprintf 'client got %d of %d bytes', length $r->{body}, $size);
like(slurp($ng->{error_log}),
     qr/digest mismatch from "docker\.io" repository "library\/app": expected \Q$blob\E, computed sha256:[0-9a-f]{64}/,
     'error log names registry, repository, expected and computed digest');
is(mismatches(), '1', 'shared counter counted it');
ok(!(grep { /\Q$hex\E/ } keys %{ cache_entries($cache) }), 'nothing cached');
is(scalar(temp_files()), 0, 'no temp file left');

$r = get("/v2/library/app/blobs/$blob");
cmp_ok(length $r->{body}, '<', $size, 'asked again: still refused');
is(mismatches(), '2', 'counter: 2');

# an unverified server passes what it gets (the reason verification exists)
$r = http_get($port_off, "/v2/library/app/blobs/$blob");
is(length $r->{body}, $size, 'registry_verify off: the corrupt body whole');
isnt('sha256:' . sha256_hex($r->{body}), $blob, '... and corrupt');

# repaired: the next pull fills and is served; no stuck lock
flip_bit($data, int($size / 2));
$r = get("/v2/library/app/blobs/$blob");
is(length $r->{body}, $size, 'repaired: whole body');
is('sha256:' . sha256_hex($r->{body}), $blob, 'repaired: correct bytes');
is(status($r), 'MISS', 'repaired: filled');
$r = get("/v2/library/app/blobs/$blob");
is(status($r), 'HIT', 'repaired: then served from the cache');
is(scalar(temp_files()), 0, 'no temp file left');

# --- shared across registries when verified, not otherwise ----------------

my $tm = decode_json(http_get($reg->{port}, '/v2/library/tagged/manifests/1',
                              headers => \@accept)->{body});
my $small = $tm->{layers}[0]{digest};
$r = get("/v2/library/tagged/blobs/$small");
is(status($r), 'MISS', 'verified: filled through docker.io');
$r = get("/v2/other.io/library/tagged/blobs/$small");
is(status($r), 'HIT', 'verified: same digest through another registry: HIT');
$r = http_get($port_off, "/v2/library/tagged/blobs/$small");
is(status($r), 'MISS', 'unverified: keyed per registry (docker.io)');
$r = http_get($port_off, "/v2/other.io/library/tagged/blobs/$small");
is(status($r), 'MISS', 'unverified: keyed per registry (other.io)');
is(at_least(3, sub { scalar grep { m{^GET /v2/library/tagged/blobs/} }
                        registry_requests($reg) }),
   3, 'one verified fill, two unverified ones went upstream');

# --- a manifest whose bytes do not match ----------------------------------

my $tagged = http_get($reg->{port}, '/v2/library/tagged/manifests/1',
                      headers => \@accept);
my $mdig = $tagged->{headers}{'docker-content-digest'}[0];
(my $mhex = $mdig) =~ s/^sha256://;
my $mdata = "$reg->{dir}/data/docker/registry/v2/blobs/sha256/"
          . substr($mhex, 0, 2) . "/$mhex/data";
my $at = index(slurp($mdata), '"digest":"sha256:') + 20;
flip_bit($mdata, $at);                        # a hex digit, still valid JSON
my $bad = http_get($reg->{port}, '/v2/library/tagged/manifests/1',
                   headers => \@accept);
is($bad->{headers}{'docker-content-digest'}[0], $mdig,
   'the registry still claims the old digest');
isnt($bad->{body}, $tagged->{body}, 'over changed bytes');

$r = get('/v2/library/tagged/manifests/1', headers => \@accept);
cmp_ok(length $r->{body}, '<', length $bad->{body},
       'tag manifest failing Docker-Content-Digest: not delivered whole');
$r = get("/v2/library/tagged/manifests/$mdig", headers => \@accept);
cmp_ok(length $r->{body}, '<', length $bad->{body},
       'by-digest manifest failing its URL digest: not delivered whole');
is(mismatches(), '4', 'both counted');
ok(!(grep { /tagged|\Q$mdig\E/ } keys %{ cache_entries($cache) }),
   'neither cached');
flip_bit($mdata, $at);
$r = get("/v2/library/tagged/manifests/$mdig", headers => \@accept);
is('sha256:' . sha256_hex($r->{body}), $mdig, 'repaired manifest served');

# --- chunked bodies --------------------------------------------------------

my $cdig = 'sha256:' . sha256_hex($noise);
(my $chex = $cdig) =~ s/^sha256://;
spew("$hostdir/$chex", $noise);

$r = get("/v2/chunked.test/x/blobs/$cdig");
ok($r->{body} eq $noise, 'chunked body verified and delivered')
    or diag "status $r->{status}, " . length($r->{body}) . ' bytes';
ok(!$r->{headers}{'content-length'} && $r->{complete},
   '... chunked to the client too, last chunk included');
is(status($r), 'MISS', 'chunked: filled');
is(status(get("/v2/chunked.test/y/blobs/$cdig")), 'HIT',
   'chunked: cached');

my $other = $noise;
substr($other, 1000, 1) = chr(ord(substr($other, 1000, 1)) ^ 0x01);
my $odig = 'sha256:' . sha256_hex($noise . 'x');
(my $ohex = $odig) =~ s/^sha256://;
spew("$hostdir/$ohex.bad", $other . 'x');
$r = get("/v2/chunked.test/x/blobs/$odig");
cmp_ok(length $r->{body}, '<', length($noise) + 1,
       'corrupt chunked body: client did not get it whole');
ok(!$r->{complete}, '... and no last chunk');
diag(sprintf 'client got %d of %d bytes',
     length $r->{body}, length($noise) + 1);
ok(!(grep { /\Q$ohex\E/ } keys %{ cache_entries($cache) }),
   'corrupt chunked body not cached');

# --- no framing, or cut short: never cached ---------------------------------

my $plain = "close-delimited\n" x 10000;
my $pdig = 'sha256:' . sha256_hex($plain);
spew("$hostdir/" . substr($pdig, 7), $plain);
$r = get("/v2/close.test/x/blobs/$pdig");
is($r->{status}, 502, 'close-delimited blob: refused (it cannot be checked '
                      . 'before its last byte goes out)');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
$r = get("/v2/close.test/z/blobs/$pdig");
isnt(status($r), 'HIT', 'close-delimited body never cached')
    or diag explain [keys %{ cache_entries($cache) }];

$r = get("/v2/cut.test/library/cut/blobs/$cut_blob");
cmp_ok(length $r->{body}, '<', $cut_size, 'connection cut mid-body: short');
ok(!(grep { /\Q$cut_blob\E/ } keys %{ cache_entries($cache) }),
   'cut body not cached');
$r = get("/v2/library/cut/blobs/$cut_blob");
is('sha256:' . sha256_hex($r->{body}), $cut_blob,
   'the same blob from the whole upstream: filled and served');
is(scalar(temp_files()), 0, 'no temp file left after all of it');
is(mismatches(), '5', 'one more mismatch: the corrupt chunked body');

# the counter lives in shared memory and survives a reload
my $workers = () = slurp($ng->{error_log}) =~ /start worker process/g;
kill 'HUP', $ng->{pid};
my $deadline = time + 30;
while (time < $deadline) {
    last if (() = slurp($ng->{error_log}) =~ /start worker process/g)
            >= $workers + 2;
    select undef, undef, undef, 0.05;
}
ok((() = slurp($ng->{error_log}) =~ /start worker process/g) >= $workers + 2,
   'reloaded: new workers');
is(mismatches(), '5', 'counter kept across the reload');

like(slurp($ng->{error_log}), qr/start worker process/, 'error log read');
unlike(slurp($ng->{error_log}), qr/exited on signal|\[alert\]/, "no worker crashed");

done_testing();
