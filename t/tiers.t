#!/usr/bin/perl

# Tiering, issue 12 point 3: an edge mirror whose upstream is a cluster of
# parent mirrors (this module again, path-prefix style), sharded with
# "hash $registry_cache_key consistent", so each digest is stored on
# exactly one parent.  Two parents (127.0.0.2, 127.0.0.3) in front of a
# real distribution registry, edges (127.0.0.1) in front of them:
#
# - a pull through an edge: every blob and by-digest manifest is in the
#   edge's cache and in exactly one parent's, the one nginx's consistent
#   hash ring gives its key (RegistryTest's hash_ring builds it as nginx
#   does: crc32 points, 160 per server); both parents hold some; the origin served each once;
#   a fresh edge's pull picks the same parents and costs the origin no GET;
# - edges verify again: a blob corrupted in its parent's cache file never
#   reaches the client whole from a fresh edge, is not cached there, and
#   the edge's digest-mismatch counter counts it;
# - CDN-Loop: each tier adds its id (the parents see the edge's); a parent
#   configured with the edge as its upstream, and a parent that shares an
#   edge's id, end in 508 after one extra hop, never bouncing;
# - a parent stopped mid-test: a pull of a new image through the edge,
#   blobs of the stopped parent's share included, succeeds; the remaining
#   parent fetched them from the origin.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use JSON::PP;
use RegistryTest;

my $reg = start_registry();
my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json');

# the digests of an image pushed to the origin: its manifest, config and
# layers, with the cache key of each
sub digests_of {
    my ($name) = @_;
    my $r = http_get($reg->{port}, "/v2/$name/manifests/1", headers => \@oci);
    my $m = decode_json($r->{body});
    my %k = ("* manifest $r->{headers}{'docker-content-digest'}[0]" => 1);
    $k{"* blob $_->{digest}"} = 1 for $m->{config}, @{ $m->{layers} };
    return { manifest => $m, keys => [sort keys %k],
             digest => $r->{headers}{'docker-content-digest'}[0] };
}

my $port = free_port();
my @paddr = ("127.0.0.2:$port", "127.0.0.3:$port");
my $ring = hash_ring(@paddr);

# image 1: a big layer (streams through many proxy buffers) and small
# ones; image 2: other layers.  Layer digests vary from run to run (file
# times), so an image is rebuilt (at most 5 times) until its keys fall on
# both parents of the ring.
my $noise = join '', map { Digest::SHA::sha256("tiers $_") } 1 .. 16384;
sub image {
    my ($name, $n, @extra) = @_;
    for my $try (1 .. 5) {
        my @layers = (@extra, map { { "f$_" => "$name layer $_ try $try\n" } }
                                  1 .. $n);
        push_image(build_image(layers => \@layers), $reg, "$name:1");
        my $d = digests_of($name);
        my %on = map { ring_owner($ring, $_) => 1 } @{ $d->{keys} };
        return $d if keys %on == 2;
    }
    die "$name: every key on one parent five times";
}
my $img1 = image('library/app', 6, { big => $noise });
my $img2 = image('library/other', 6);
my ($big, $big_size) = @{ $img1->{manifest}{layers}[0] }{qw(digest size)};

# the parents: each its own id, the origin as upstream under the name
# the edges use as path prefix
my %parent;
for my $i (0, 1) {
    my $addr = $paddr[$i];
    $parent{$addr} = start_nginx(ports => [$addr], http => <<"EOF");
    registry_node_id parent-$i;
    registry example.test $reg->{url};
    log_format tiers '\$request \$status "\$http_cdn_loop" \$registry_cache_status';
    server {
        listen $addr;
        access_log \@DIR\@/tiers.log tiers;
$MIRROR_PARAMS
    }
EOF
    $parent{$addr}{name} = "parent-$i";
}

# an edge: the parents as one sharded upstream
sub edge {
    my ($id) = @_;
    my $eport = free_port();
    my $ng = start_nginx(ports => [$eport], http => <<"EOF");
    registry_node_id $id;
    upstream parents {
        hash \$registry_cache_key consistent;
        server $paddr[0] max_fails=1 fail_timeout=30s;
        server $paddr[1] max_fails=1 fail_timeout=30s;
    }
    registry example.test http://parents/example.test;
    log_format edge '\$request \$status \$upstream_addr \$registry_cache_status';
    server {
        listen 127.0.0.1:$eport;
        access_log \@DIR\@/edge.log edge;
$MIRROR_PARAMS
    }
EOF
    $ng->{port} = $eport;
    return $ng;
}

sub keys_in {
    my ($ng) = @_;
    return [sort grep { /^\* (?:blob|manifest) / }
            keys %{ cache_entries("$ng->{dir}/cache") }];
}

sub origin_gets {
    my ($path_re) = @_;
    return scalar grep { /^GET $path_re/ } registry_requests($reg);
}

# --- 1. a pull through the edge: sharded, each digest on one parent -------

my $edge = edge('edge-1');
my ($ok, $log) = skopeo_pull($edge->{port}, 'example.test/library/app:1');
ok($ok, 'skopeo pull through the edge') or diag($log);

# (a cache file is renamed into place as its fill ends, which can be just
# after the client has the last byte: looked at with a bounded wait)
sub holds_all {
    my ($keys, @ng) = @_;
    return eventually(sub {
        my %in = map { map { $_ => 1 } @{ keys_in($_) } } @ng;
        return !grep { !$in{$_} } @$keys;
    });
}
holds_all($img1->{keys}, $edge);
is_deeply(keys_in($edge), $img1->{keys},
          'the edge holds every blob and the manifest by digest');
holds_all($img1->{keys}, values %parent);
my %held = map { $_ => { map { $_ => 1 } @{ keys_in($parent{$_}) } } } @paddr;
for my $k (@{ $img1->{keys} }) {
    my @on = grep { $held{$_}{$k} } @paddr;
    is_deeply(\@on, [ring_owner($ring, $k)],
              "$k: on exactly one parent, the ring's");
}
for my $a (@paddr) {
    ok(keys %{ $held{$a} }, "$parent{$a}{name} holds part of the image");
}
for my $k (@{ $img1->{keys} }) {
    my ($kind, $d) = $k =~ /^\* (\w+) (\S+)$/;
    is(at_least(1, sub { origin_gets(qr{/v2/library/app/${kind}s/\Q$d\E$}) }),
       1,
       "the origin served $kind $d once");
}
ok(eventually(sub { (slurp("$parent{$paddr[0]}{dir}/tiers.log")
                        . slurp("$parent{$paddr[1]}{dir}/tiers.log"))
                       =~ m{^GET /v2/example\.test/library/app/blobs/\S+ HTTP/1\.1 200 "edge-1" MISS$}m }),
   'parents got the edge\'s requests by path prefix, CDN-Loop: edge-1');

# a fresh edge, same upstream block: the same parent per digest, nothing
# new anywhere but in that edge, no GET at the origin
my $origin_before = () = registry_requests($reg);
my $edge2 = edge('edge-2');
($ok, $log) = skopeo_pull($edge2->{port}, 'example.test/library/app:1');
ok($ok, 'skopeo pull through a fresh edge') or diag($log);
holds_all($img1->{keys}, $edge2);
is_deeply(keys_in($edge2), $img1->{keys}, '... which holds it all');
for my $a (@paddr) {
    is_deeply({ map { $_ => 1 } @{ keys_in($parent{$a}) } }, $held{$a},
              "... $parent{$a}{name}'s cache unchanged");
}
# the tag is checked at the parent its own key falls on, which knows it
# (registry_tag_valid) and answers from the manifest's entry if it holds
# it, else asks the origin with one HEAD
my ($tag_at);
eventually(sub {
    ($tag_at) = grep { slurp("$parent{$_}{dir}/tiers.log")
        =~ m{^HEAD /v2/example\.test/library/app/manifests/1 \S+ 200 "edge-2"}m }
        @paddr });
ok($tag_at, '... the tag checked at one parent');
my $want = ($tag_at // '') eq ring_owner($ring, "* manifest $img1->{digest}")
           ? 0 : 1;
my @new;
at_least($want, sub {
    my @all = registry_requests($reg);
    @new = @all[$origin_before .. $#all];
    return scalar @new;
});
is(scalar(grep { !/^HEAD \/v2\/library\/app\/manifests\// } @new), 0,
   '... no GET at the origin');
is(scalar @new, $want, '... nothing at all, or one HEAD of the manifest '
   . 'if the tag\'s parent is not the manifest\'s') or diag(join "\n", @new);

# --- 2. edges verify what a parent sends -------------------------------


my $bigkey = "* blob $big";
my $owner = $parent{ring_owner($ring, $bigkey)};
my $file = cache_entries("$owner->{dir}/cache")->{$bigkey}[0];
ok($file, "the big layer ($big_size bytes) in $owner->{name}'s cache file");
my $good = http_get($reg->{port}, "/v2/library/app/blobs/$big")->{body};
is(length $good, $big_size, 'its bytes, from the origin');
my $at = (-s $file) - int($big_size / 2);
flip_bit($file, $at);
my $bad = substr(slurp($file), -$big_size);
isnt(sha256_hex($bad), substr($big, 7), 'the parent\'s copy is corrupt now');

# the parent serves its entry as it is (a hit); a fresh edge checks it
my $edge3 = edge('edge-3');
is(mismatches_at($edge3->{port}), '0', 'a fresh edge: no mismatch yet');
my $path = "/v2/example.test/library/app/blobs/$big";
my $r = http_get($edge3->{port}, $path);
ok(!($r->{body} eq $bad), 'the client did not get the corrupt bytes whole');
ok($r->{status} != 200 || length $r->{body} < $big_size,
   '... the answer was refused or cut short');
diag(sprintf 'status %s, %d of %d bytes', $r->{status}, length $r->{body},
     $big_size);
is(mismatches_at($edge3->{port}), '1', 'the edge counted a digest mismatch');
like(slurp($edge3->{error_log}),
     qr/digest mismatch from "example\.test" repository "example\.test\/library\/app": expected \Q$big\E/,
     '... and logged it');
ok(!cached_digest($edge3, $big), '... and did not cache it');
ok(eventually(sub { slurp("$owner->{dir}/tiers.log")
                   =~ m{^GET \Q$path\E HTTP/1\.1 200 "edge-3" HIT$}m }),
   'the parent sent its (corrupt) entry');

# repaired at the parent: the same edge fills it now, checked
flip_bit($file, $at);
$r = http_get($edge3->{port}, $path);
is($r->{status}, 200, 'repaired parent: served');
ok($r->{body} eq $good, '... whole and right');
ok(eventually(sub { cached_digest($edge3, $big) }), '... and cached at the edge');
is(mismatches_at($edge3->{port}), '1', '... no new mismatch');

# --- 3. CDN-Loop: tiers chain, loops stop --------------------------------

# a chain: the owning parent's entry, then the edge's own (its miss)
my $cfg = $img1->{manifest}{config}{digest};
$r = http_get($edge3->{port}, "/v2/example.test/library/app/blobs/$cfg");
is($r->{status}, 200, 'a blob new to an edge: served');
is(join(', ', @{ $r->{headers}{'cache-status'} // [] }),
   "$parent{ring_owner($ring, qq{* blob $cfg})}{name}; hit, edge-3; fwd=miss; "
   . 'fwd-status=200',
   '... Cache-Status: its parent\'s hit, then the edge\'s miss');

# a small image of its own for the loops: whatever the loops do, none of
# it may reach the origin
push_image(build_image(layers => [{ loop => "loop\n" }]), $reg,
           'library/loop:1');
my $loopblob = decode_json(http_get($reg->{port}, '/v2/library/loop/manifests/1',
                                    headers => \@oci)->{body})->{layers}[0]{digest};
my $origin_seen = () = registry_requests($reg);

# a parent wrongly configured with the edge as its upstream: the edge
# refuses the request when it comes round, carrying its id
my ($lport, $lpport) = (free_port(), free_port());
my $lparent = start_nginx(ports => ["127.0.0.4:$lpport"], http => <<"EOF");
    registry_node_id loop-parent;
    registry example.test http://127.0.0.1:$lport/example.test;
    log_format tiers '\$request \$status "\$http_cdn_loop" \$registry_cache_status';
    server {
        listen 127.0.0.4:$lpport;
        access_log \@DIR\@/tiers.log tiers;
$MIRROR_PARAMS
    }
EOF
my $ledge = start_nginx(ports => [$lport], http => <<"EOF");
    registry_node_id loop-edge;
    upstream parents {
        hash \$registry_cache_key consistent;
        server 127.0.0.4:$lpport max_fails=1 fail_timeout=30s;
    }
    registry example.test http://parents/example.test;
    log_format tiers '\$request \$status "\$http_cdn_loop" \$registry_cache_status';
    server {
        listen 127.0.0.1:$lport;
        access_log \@DIR\@/tiers.log tiers;
$MIRROR_PARAMS
    }
EOF

sub lines_of { return scalar grep { /$_[1]/ } file_lines("$_[0]{dir}/tiers.log") }

$r = http_get($lport, "/v2/example.test/library/loop/blobs/$loopblob");
is($r->{status}, 508, 'edge -> parent -> the same edge: 508');
like($r->{body}, qr/request loop/, '... the loop error');
ok(eventually(sub { slurp("$ledge->{dir}/tiers.log")
                    =~ m{^GET \S+ HTTP/1\.1 508 "loop-edge, loop-parent" -$}m }),
   '... refused at the edge, which found its own id');
is(at_least(2, sub { lines_of($ledge, 'library/loop/') }), 2,
   '... the edge saw the request twice');
is(at_least(1, sub { lines_of($lparent, 'library/loop/') }), 1,
   '... the parent once');

# a tag goes round too: the edge's check (HEAD) and fetch (GET), and the
# parent's own check and fetch of each, every one refused at the edge on
# its second visit: at most 3 requests at the parent, 6 at the edge
my ($ok2, $log2) = skopeo_pull($lport, 'example.test/library/loop:1');
ok(!$ok2, 'a pull through the loop fails');
like($log2, qr/508/, '... with the loop\'s 508');
sub tag_lines { return map { lines_of($_, 'library/loop/manifests/') } @_ }
at_least(2, sub { (tag_lines($ledge))[0] });
sleep 0.5;      # for anything still going round
my ($e, $p) = tag_lines($ledge, $lparent);
ok($p >= 1 && $p <= 3, "... the parent saw the tag $p times (1 to 3)");
ok($e >= 2 && $e <= 6, "... the edge $e times (2 to 6)");
sleep 0.5;
is(join(' ', tag_lines($ledge, $lparent)), "$e $p",
   '... and then nothing more: no bouncing');

# a parent with an edge's id (one id on two nodes): the parent takes the
# edge's request for its own and refuses it
my $dport = free_port();
my $dup = start_nginx(ports => [$dport], http => <<"EOF");
    registry_node_id parent-0;
    registry example.test http://$paddr[0]/example.test;
    server {
        listen 127.0.0.1:$dport;
$MIRROR_PARAMS
    }
EOF
$r = http_get($dport, "/v2/example.test/library/loop/blobs/$loopblob");
is($r->{status}, 508, 'an edge with the parent\'s id: 508');
like($r->{body}, qr/request loop/, '... the loop error');
ok(eventually(sub { slurp("$parent{$paddr[0]}{dir}/tiers.log")
                    =~ m{^GET /v2/example\.test/library/loop/\S+ HTTP/1\.1 508 "parent-0" -$}m }),
   '... refused at the parent');
is(scalar(() = registry_requests($reg)), $origin_seen,
   'nothing of the loops reached the origin');

stop($_->{pid}) for $dup, $ledge, $lparent;

# --- 4. a parent stopped: its share goes to the next parent --------------

# image 2 is new to every node; its keys fall on both parents (see image):
# the owner of its first layer is stopped, the other takes its share
my $l0 = "* blob $img2->{manifest}{layers}[0]{digest}";
my $dead_addr = ring_owner($ring, $l0);
my ($alive_addr) = grep { $_ ne $dead_addr } @paddr;
my ($dead, $alive) = @parent{$dead_addr, $alive_addr};
my @dead_keys = grep { ring_owner($ring, $_) eq $dead_addr } @{ $img2->{keys} };
ok(@dead_keys, "$dead->{name} owns " . @dead_keys . ' of image 2\'s '
               . @{ $img2->{keys} } . ' digests');
my %img2 = map { $_ => 1 } @{ $img2->{keys} };
is(scalar(grep { $img2{$_} } map { @{ keys_in($_) } } $edge, values %parent),
   0, 'image 2 is in no cache yet');
is(origin_gets(qr{/v2/library/other/(?:blobs|manifests/sha256)}), 0,
   '... and was never fetched from the origin');
stop($dead->{pid});
my ($dhost, $dp) = split /:/, $dead_addr;
ok(!IO::Socket::INET->new(PeerAddr => $dhost, PeerPort => $dp, Timeout => 2),
   "$dead->{name} stopped: its port refuses");

($ok, $log) = skopeo_pull($edge->{port}, 'example.test/library/other:1');
ok($ok, 'a pull of a new image through the edge succeeds') or diag($log);
holds_all($img2->{keys}, $edge);
is_deeply(keys_in($edge), [sort @{ $img1->{keys} }, @{ $img2->{keys} }],
          '... the edge holds it all');
holds_all($img2->{keys}, $alive);
my %alive_has = map { $_ => 1 } @{ keys_in($alive) };
is(scalar(grep { !$alive_has{$_} } @{ $img2->{keys} }), 0,
   "... $alive->{name} holds every digest of it, "
   . scalar(@dead_keys) . " of $dead->{name}'s share included");
for my $k (@{ $img2->{keys} }) {
    my ($kind, $d) = $k =~ /^\* (\w+) (\S+)$/;
    is(at_least(1, sub { origin_gets(qr{/v2/library/other/${kind}s/\Q$d\E$}) }),
       1, "the origin served $kind $d once");
}
like(slurp($edge->{error_log}),
     qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream.*upstream: "http:\/\/\Q$dhost:$dp\E\/v2\/example\.test\/library\/other\//,
     "the edge tried $dead->{name} first, as the ring says, then the next");

stop($_->{pid}) for $edge3, $edge2, $edge, $alive;
done_testing();
