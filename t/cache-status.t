#!/usr/bin/perl

# Cache-Status (RFC 9211), issue 12 point 4: each tier adds its own entry,
# named by its registry_node_id, closest to the origin first.  An edge
# mirror in front of a parent mirror (path prefix, as tiers run): the
# first pull shows the parent's miss and the edge's miss; the edge's next
# hit shows the edge's hit alone (the parent's line nginx stored in the
# edge's cache file is never replayed); a pull of the same blob under
# another name from a cold edge shows the parent's hit.  An upstream's
# Cache-Status line with a byte that is not printable is dropped whole.
# registry_cache_header off turns it off with X-Registry-Cache.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use RegistryTest;

my $reg = start_registry();
my $img = build_image(layers => [{ a => "cache status a\n" },
                                 { b => "cache status b\n" }]);
push_image($img, $reg, 'library/app:1');
my $m = http_get($reg->{port}, '/v2/library/app/manifests/1',
                 headers => ['Accept: application/vnd.oci.image.manifest.v1+json']);
my $blob = decode_json($m->{body})->{layers}[0]{digest};
ok($blob, 'the image has a layer');

my $pport = free_port();
my $parent = start_nginx(ports => [$pport], http => <<"EOF");
    registry_node_id parent-1;
    registry docker.io $reg->{url};
    server {
        listen 127.0.0.1:$pport;
$MIRROR_PARAMS
    }
EOF

my ($eport, $eport2, $qport) = map { free_port() } 1 .. 3;
my $edge = start_nginx(ports => [$eport, $qport], http => <<"EOF");
    registry_node_id 9edge;
    registry docker.io http://127.0.0.1:$pport/docker.io;
    server {
        listen 127.0.0.1:$eport;
        registry_default docker.io;
$MIRROR_PARAMS
    }
    server {
        listen 127.0.0.1:$qport;
        registry_default docker.io;
        registry_cache_header off;
$MIRROR_PARAMS
    }
EOF

sub status_of {
    my ($r) = @_;
    return join ', ', @{ $r->{headers}{'cache-status'} // [] };
}

my $path = "/v2/library/app/blobs/$blob";

my $r = http_get($eport, $path);
is($r->{status}, 200, 'first pull through edge and parent');
is(status_of($r),
   'parent-1; fwd=miss; fwd-status=200, "9edge"; fwd=miss; fwd-status=200',
   'the parent\'s miss, then the edge\'s (an id that is no sf-token quoted)');

$r = http_get($eport, $path);
is(status_of($r), '"9edge"; hit',
   'the edge\'s hit alone: the stored parent line is not replayed');
is(scalar @{ $r->{headers}{'cache-status'} // [] }, 1, '... one line');

# a cold edge of its own: the parent's hit, then the edge's miss
my $edge2 = start_nginx(ports => [$eport2], http => <<"EOF");
    registry_node_id edge-2;
    registry docker.io http://127.0.0.1:$pport/docker.io;
    server {
        listen 127.0.0.1:$eport2;
        registry_default docker.io;
$MIRROR_PARAMS
    }
EOF
$r = http_get($eport2, $path);
is(status_of($r), 'parent-1; hit, edge-2; fwd=miss; fwd-status=200',
   'a cold edge: the parent\'s hit, the edge\'s miss');

# registry_cache_header off: neither header
$r = http_get($qport, $path);
is($r->{status}, 200, 'registry_cache_header off: served');
ok(!$r->{headers}{'cache-status'} && !$r->{headers}{'x-registry-cache'},
   '... with neither Cache-Status nor X-Registry-Cache');

# an upstream's Cache-Status with a byte that is not printable: dropped
my $hport = free_port();
my $hostile = start_nginx(ports => [$hport], plain => 1, http => <<"EOF");
    server {
        listen 127.0.0.1:$hport;
        location / {
            add_header Cache-Status "upstream-x; hit\tworse" always;
            add_header Cache-Status "upstream-y; hit" always;
            proxy_pass $reg->{url};
        }
    }
EOF
my $fport = free_port();
my $front = start_nginx(ports => [$fport], http => <<"EOF");
    registry_node_id front;
    registry docker.io http://127.0.0.1:$hport;
    server {
        listen 127.0.0.1:$fport;
        registry_default docker.io;
$MIRROR_PARAMS
    }
EOF
$r = http_get($fport, $path);
is($r->{status}, 200, 'through an upstream that sends a bad Cache-Status');
is(status_of($r), 'front; fwd=miss; fwd-status=200',
   '... its lines are dropped whole, the mirror\'s own entry stays');

stop($_->{pid}) for $front, $hostile, $edge2, $edge, $parent;
done_testing();
