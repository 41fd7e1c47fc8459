#!/usr/bin/perl

# The whole picture, issue 12 point 5.  One registry, "example.test",
# has an origin in each of two regions: apac and us, each a CNCF
# distribution registry behind a TLS front (a plain nginx) whose
# certificate names only that region's host, registry-apac.test or
# registry-us.test; the same images are pushed to both.  Two parents,
# this module on 127.0.0.2 (parent-apac, registry_region_first apac) and
# 127.0.0.3 (parent-us, registry_region_first us), each with both regions
# (upstream{} blocks apac and us, host= the region's name).  Two edges,
# 127.0.0.4 (edge-apac) and 127.0.0.5 (edge-us), each with the parents
# as one upstream sharded by "hash $registry_cache_key consistent".
# Clients: skopeo through each edge, and raw pulls (manifest by tag,
# then config and layers, each checked against its digest) from two
# source addresses, 127.0.0.11 (a client in apac, through edge-apac) and
# 127.0.0.12 (one in us, through edge-us).
#
# - Images pulled through both edges, one after the other and at the
#   same time: every blob and by-digest manifest was fetched from an
#   origin once across both origins, from the region of the parent that
#   holds it; each is in exactly one parent's cache, the one the ring
#   gives its key; both edges hold it all.
# - apac's origin stopped (its front answers 502): a new image pulled
#   through both edges; parent-apac's share came from us (its log and
#   Cache-Status say region=us), once per blob, nothing lost.
# - parent-us stopped as well: another new image through both edges;
#   the edges' ring moves parent-us's share to parent-apac, which takes
#   all of it from us.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use RegistryTest;

my $d = test_dir();
my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json');

# --- origins: a registry and a TLS front per region --------------------------

my $ca = make_ca();
my %origin;
for my $name ('apac', 'us') {
    $origin{$name} = { reg => start_registry(), host => "registry-$name.test",
                       cert => make_cert($ca, "registry-$name.test"),
                       port => free_port() };
}
my $other = make_cert($ca, 'someone-else.test');
my $fronts = start_nginx(plain => 1,
                         ports => [map { $origin{$_}{port} } sort keys %origin],
                         http => join '', map { my $o = $origin{$_}; <<"EOF" } sort keys %origin);
    log_format front_$_ '\$host "\$request" \$status';
    server {
        listen 127.0.0.1:$o->{port} ssl default_server;
        ssl_certificate $other->[0];
        ssl_certificate_key $other->[1];
        return 421;
    }
    server {
        listen 127.0.0.1:$o->{port} ssl;
        server_name $o->{host};
        ssl_certificate $o->{cert}[0];
        ssl_certificate_key $o->{cert}[1];
        access_log \@DIR\@/$_.log front_$_;
        location / {
            proxy_pass http://127.0.0.1:$o->{reg}{port};
            proxy_set_header Host \$host;
        }
    }
EOF
$origin{$_}{log} = "$fronts->{dir}/$_.log" for keys %origin;

# GETs of a path a region's front answered with $status
sub origin_gets {
    my ($name, $path, $status) = @_;
    $status //= 200;
    return scalar grep { /^\S+ "GET \Q$path\E HTTP\/1\.1" $status$/ }
                  file_lines($origin{$name}{log});
}

# --- the ring of the edges' upstream, as nginx builds it -----------------------

my $pport = free_port();
my %paddr = (apac => "127.0.0.2:$pport", us => "127.0.0.3:$pport");
my %region_of = reverse %paddr;

my $ring = hash_ring($paddr{apac}, $paddr{us});

# the region of the parent a key falls on
sub owner {
    my ($key) = @_;
    return $region_of{ ring_owner($ring, $key) };
}

# --- images, the same in both origins, each with keys on both parents -------

sub digests_of {
    my ($repo) = @_;
    my $r = http_get($origin{apac}{reg}{port}, "/v2/$repo/manifests/1",
                     headers => \@oci);
    my $m = decode_json($r->{body});
    my $md = $r->{headers}{'docker-content-digest'}[0];
    my %path = ("* manifest $md" => "/v2/$repo/manifests/$md");
    $path{"* blob $_->{digest}"} = "/v2/$repo/blobs/$_->{digest}"
        for $m->{config}, @{ $m->{layers} };
    return { repo => $repo, keys => [sort keys %path], path => \%path };
}

# layer digests vary from run to run (file times): rebuilt (at most 20
# times) until the image's blobs fall on both parents.  Blobs, not keys:
# the checks below need a blob on each parent (a split where one parent
# owns only the manifest made image three's "blobs on parent-apac" fail,
# about one run in 30)
sub image {
    my ($repo) = @_;
    for my $try (1 .. 20) {
        my @layers = map { { "f$_" => "$repo layer $_ try $try\n" } } 1 .. 4;
        my $img = build_image(layers => \@layers);
        push_image($img, $origin{$_}{reg}, "$repo:1") for sort keys %origin;
        my $i = digests_of($repo);
        my %on = map { owner($_) => 1 } grep { /^\* blob / } @{ $i->{keys} };
        return $i if keys %on == 2;
    }
    die "$repo: every blob on one parent 20 times";
}
my %img = map { $_ => image("library/$_") } qw(one two three four);
is(upstream_digest($origin{us}{reg}, 'library/one', '1'),
   upstream_digest($origin{apac}{reg}, 'library/one', '1'),
   'the same images in both origins');

# --- parents and edges -------------------------------------------------------

my %parent;
for my $region ('apac', 'us') {
    my $addr = $paddr{$region};
    $parent{$region} = start_nginx(ca => slurp($ca->{crt}), ports => [$addr],
                                   http => <<"EOF");
    registry_node_id parent-$region;
    upstream apac { server 127.0.0.1:$origin{apac}{port}; }
    upstream us   { server 127.0.0.1:$origin{us}{port}; }
    registry example.test https://apac host=registry-apac.test;
    registry_region example.test https://us host=registry-us.test;
    registry_region_first $region;
    log_format parent '\$registry_region \$registry_cache_status '
                      '"\$request" \$status "\$http_cdn_loop"';
    server {
        listen $addr;
        access_log \@DIR\@/parent.log parent;
        proxy_connect_timeout 2s;
        proxy_read_timeout 5s;
$MIRROR_PARAMS
    }
EOF
    $parent{$region}{name} = "parent-$region";
}

my %edge;
my $eport = free_port();
my %eaddr = (apac => '127.0.0.4', us => '127.0.0.5');
my %client = (apac => '127.0.0.11', us => '127.0.0.12');
for my $region ('apac', 'us') {
    $edge{$region} = start_nginx(ports => ["$eaddr{$region}:$eport"],
                                 http => <<"EOF");
    registry_node_id edge-$region;
    upstream parents {
        hash \$registry_cache_key consistent;
        server $paddr{apac} max_fails=1 fail_timeout=30s;
        server $paddr{us} max_fails=1 fail_timeout=30s;
    }
    registry example.test http://parents/example.test;
    log_format edge '\$remote_addr "\$request" \$status \$upstream_addr '
                    '\$registry_cache_status';
    server {
        listen $eaddr{$region}:$eport;
        access_log \@DIR\@/edge.log edge;
$MIRROR_PARAMS
    }
EOF
    $edge{$region}{name} = "edge-$region";
}

# --- clients -------------------------------------------------------------------

sub skopeo_cmd {
    my ($region, $repo) = @_;
    return ('skopeo', '--insecure-policy', 'copy', '--src-tls-verify=false',
            "docker://$eaddr{$region}:$eport/example.test/$repo:1",
            'dir:' . test_dir() . '/pull-' . int(rand 1e9));
}

sub skopeo_via {
    my ($region, $repo) = @_;
    my $log = run_out(skopeo_cmd($region, $repo));
    return ($? == 0, $log);
}

# skopeo through both edges at the same time (each bounded by a minute)
sub skopeo_both {
    my ($repo) = @_;
    my %pid;
    for my $region ('apac', 'us') {
        my $log = test_dir() . "/skopeo-$region-" . int(rand 1e9);
        $pid{$region} = [spawn(cmd => ['timeout', '60', skopeo_cmd($region, $repo)],
                               stdout => $log), $log];
    }
    my %ok;
    for my $region ('apac', 'us') {
        waitpid($pid{$region}[0], 0);
        $ok{$region} = [$? == 0, slurp($pid{$region}[1])];
    }
    return %ok;
}

# a pull by hand from a client's own address through its region's edge:
# the manifest by tag, then its config and layers, each body checked
# against its digest; the answers by path
sub raw_pull {
    my ($region, $repo) = @_;
    my %o = (local => $client{$region}, host => $eaddr{$region});
    my %got;
    my $r = http_get($eport, "/v2/example.test/$repo/manifests/1",
                     headers => \@oci, %o);
    $got{tag} = $r;
    return (0, "manifest: $r->{status}", \%got) unless $r->{status} == 200;
    my $m = $r->{json} or return (0, 'manifest: no JSON', \%got);
    for my $blob ($m->{config}, @{ $m->{layers} }) {
        my $b = http_get($eport, "/v2/example.test/$repo/blobs/$blob->{digest}",
                         %o);
        $got{"/v2/$repo/blobs/$blob->{digest}"} = $b;
        return (0, "$blob->{digest}: $b->{status}", \%got)
            unless $b->{status} == 200
                   && 'sha256:' . sha256_hex($b->{body}) eq $blob->{digest};
    }
    return (1, '', \%got);
}

sub keys_in {
    my ($ng) = @_;
    return { map { $_ => 1 } grep { /^\* (?:blob|manifest) /
                                  } keys %{ cache_entries("$ng->{dir}/cache") } };
}

# (a cache file is renamed into place as its fill ends, which can be just
# after the client has the last byte: looked at with a bounded wait)
sub holds_all {
    my ($img, @ng) = @_;
    return eventually(sub {
        my %in = map { %{ keys_in($_) } } @ng;
        return !grep { !$in{$_} } @{ $img->{keys} };
    });
}

# each key of an image: fetched from the origins once in all (200 GETs of
# both fronts), from $from (a region, or the owning parent's region when
# undef); held by the ring's parent only, or by $only
sub once_each {
    my ($img, $what, %o) = @_;
    my $repo = $img->{repo};
    holds_all($img, map { $parent{$_} } $o{only} // ('apac', 'us'));
    my %held = map { $_ => keys_in($parent{$_}) } 'apac', 'us';
    my (@twice, @wrong, @parents);
    for my $k (@{ $img->{keys} }) {
        my $from = $o{from} // owner($k);
        my $path = $img->{path}{$k};
        my %n;
        for my $name ('apac', 'us') {
            $n{$name} = at_least($name eq $from ? 1 : 0,
                                 sub { origin_gets($name, $path) });
        }
        push @twice, "$k: apac $n{apac}, us $n{us}"
            if $n{apac} + $n{us} != 1;
        push @wrong, "$k: not from $from" unless $n{$from};
        my @on = sort grep { $held{$_}{$k} } 'apac', 'us';
        my $want = $o{only} // owner($k);
        push @parents, "$k: on @on, not $want only" if "@on" ne $want;
    }
    is(scalar @twice, 0, "$what: every blob and manifest by digest fetched "
       . 'from the origins once in all') or diag(join "\n", @twice);
    is(scalar @wrong, 0, "... from " . ($o{from} // 'the owning parent\'s region'))
        or diag(join "\n", @wrong);
    is(scalar @parents, 0, '... each in exactly one parent\'s cache, '
       . ($o{only} ? "parent-$o{only}" : 'the ring\'s'))
        or diag(join "\n", @parents);
    holds_all($img, $edge{apac});
    holds_all($img, $edge{us});
    for my $region ('apac', 'us') {
        my $in = keys_in($edge{$region});
        is(scalar(grep { !$in->{$_} } @{ $img->{keys} }), 0,
           "... edge-$region holds all " . @{ $img->{keys} });
    }
}

sub owned_by {
    my ($img, $region) = @_;
    return grep { owner($_) eq $region } @{ $img->{keys} };
}

# the parent log lines of an image's blobs and by-digest manifest
sub parent_lines {
    my ($region, $repo) = @_;
    return grep { m{"GET /v2/example\.test/\Q$repo\E/(?:blobs|manifests)/sha256:} }
           file_lines("$parent{$region}{dir}/parent.log");
}

# --- 1. pulls through both edges: once per blob, one parent per blob ----------

for my $region ('apac', 'us') {
    ok(scalar(owned_by($img{one}, $region)),
       "parent-$region owns " . scalar(owned_by($img{one}, $region))
       . ' of image one\'s ' . @{ $img{one}{keys} } . ' digests');
}

my ($ok, $log) = skopeo_via('apac', 'library/one');
ok($ok, 'image one: skopeo through edge-apac') or diag($log);
my ($rok, $why) = raw_pull('us', 'library/one');
ok($rok, '... then the us client (127.0.0.12) through edge-us') or diag($why);
once_each($img{one}, 'image one');
ok(eventually(sub { grep { /^127\.0\.0\.12 "GET \/v2\/example\.test\/library\/one\/blobs\/\S+ HTTP\/1\.1" 200 \S+ MISS$/ }
                    file_lines("$edge{us}{dir}/edge.log") }),
   '... edge-us saw the us client\'s address, and filled from the parents');

# the same image at the same time through both edges
my %both = skopeo_both('library/two');
ok($both{apac}[0], 'image two: skopeo through edge-apac, at the same time')
    or diag($both{apac}[1]);
ok($both{us}[0], '... as skopeo through edge-us') or diag($both{us}[1]);
once_each($img{two}, 'image two, both edges at once');

# both parents' first regions served: each origin served its parent's share
# (a parent logs after its answer has gone: counted with a bounded wait)
for my $region ('apac', 'us') {
    my $want = scalar(owned_by($img{one}, $region))
               + scalar(owned_by($img{two}, $region));
    is(at_least($want, sub {
           scalar grep { m{^\Q$region\E MISS "GET } }
                       parent_lines($region, 'library/one'),
                       parent_lines($region, 'library/two') }),
       $want, "parent-$region filled its share from $region ($region first)");
}
my @loops = grep { !/ "edge-(?:apac|us)"$/ }
            map { parent_lines($_, 'library/one'),
                  parent_lines($_, 'library/two') } 'apac', 'us';
is(scalar @loops, 0, '... each asked by an edge (CDN-Loop: the edge\'s id)')
    or diag(join "\n", @loops);

# the clients of both regions: hits at their own edges now
for my $region ('apac', 'us') {
    my ($ok, $why, $got) = raw_pull($region, 'library/two');
    ok($ok, "image two again, the $region client ($client{$region}) "
       . "through edge-$region") or diag($why);
    my @miss = grep { ($_->{headers}{'x-registry-cache'}[0] // '') ne 'HIT' }
               map { $got->{$_} } grep { m{/blobs/} } keys %$got;
    is(scalar @miss, 0, '... every blob a hit at the edge');
}

# --- 2. apac's origin stopped: its parent fails over to us -------------------

stop($origin{apac}{reg}{pid});
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                          PeerPort => $origin{apac}{reg}{port}, Timeout => 2),
   'apac\'s origin stopped: its port refuses');
for my $region ('apac', 'us') {
    ok(scalar(owned_by($img{three}, $region)),
       "parent-$region owns " . scalar(owned_by($img{three}, $region))
       . ' of image three\'s ' . @{ $img{three}{keys} } . ' digests');
}

# the us client first, so that its edge's misses carry the parents'
# Cache-Status
($rok, $why, my $got) = raw_pull('us', 'library/three');
ok($rok, 'image three: the us client through edge-us') or diag($why);
my @keyed = map { [$_, $got->{ $img{three}{path}{$_} }] }
            grep { /^\* blob / } owned_by($img{three}, 'apac');
ok(@keyed, '... ' . @keyed . ' of its blobs on parent-apac');
my @not = map { "$_->[0]: " . join(', ', @{ $_->[1]{headers}{'cache-status'} // [] }) }
          grep { join(', ', @{ $_->[1]{headers}{'cache-status'} // [] })
                 !~ /^parent-apac; fwd=miss;[^,]* detail="region=us"[^,]*, edge-us; fwd=miss/ }
          @keyed;
is(scalar @not, 0, '... their Cache-Status: parent-apac fetched them from '
   . 'region us') or diag(join "\n", @not);
($ok, $log) = skopeo_via('apac', 'library/three');
ok($ok, '... and skopeo through edge-apac') or diag($log);
once_each($img{three}, 'image three, apac down', from => 'us');

my $share = scalar(owned_by($img{three}, 'apac'));
is(at_least($share, sub {
       scalar grep { origin_gets('apac', $img{three}{path}{$_}, 502) }
                   owned_by($img{three}, 'apac') }),
   $share, 'parent-apac asked apac first for each of its share (502 there)');
my @from;
eventually(sub {
    @from = map { /^(\S+) MISS "GET / ? $1 : () }
            parent_lines('apac', 'library/three');
    @from >= $share });
is(join(' ', sort @from), join(' ', ('us') x $share),
   '... and logged region us for each ($registry_region)');
is(scalar(grep { origin_gets('apac', $img{three}{path}{$_}, 502) }
          owned_by($img{three}, 'us')), 0,
   'parent-us never asked apac (us first, us up)');

# --- 3. parent-us stopped as well: parent-apac takes its share ---------------

stop($parent{us}{pid});
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.3', PeerPort => $pport,
                          Timeout => 2), 'parent-us stopped: its port refuses');
my @moved = owned_by($img{four}, 'us');
ok(@moved, 'image four: ' . @moved . ' of its ' . @{ $img{four}{keys} }
           . ' digests on parent-us\'s part of the ring');

($ok, $log) = skopeo_via('us', 'library/four');
ok($ok, 'image four: skopeo through edge-us') or diag($log);
($rok, $why) = raw_pull('apac', 'library/four');
ok($rok, '... and the apac client (127.0.0.11) through edge-apac')
    or diag($why);
once_each($img{four}, 'image four, apac and parent-us down', from => 'us',
          only => 'apac');
eventually(sub {
    @from = map { /^(\S+) MISS "GET / ? $1 : () }
            parent_lines('apac', 'library/four');
    @from >= @{ $img{four}{keys} } });
is(join(' ', sort @from), join(' ', ('us') x @{ $img{four}{keys} }),
   'parent-apac fetched all of it from region us');
for my $region ('apac', 'us') {
    like(slurp($edge{$region}{error_log}),
         qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream.*upstream: "http:\/\/127\.0\.0\.3:$pport\/v2\/example\.test\/library\/four\//,
         "edge-$region tried parent-us, as the ring says, then parent-apac");
}

# what came before is still served by both edges, from their caches
for my $region ('apac', 'us') {
    my ($ok, $why) = raw_pull($region, 'library/one');
    ok($ok, "image one again, the $region client through edge-$region")
        or diag($why);
}

# no worker of a node crashed or logged an alert on the way
for my $ng ($parent{apac}, $parent{us}, $edge{apac}, $edge{us}) {
    my @bad = grep { /\[(?:alert|crit|emerg)\]|exited on signal/ }
              file_lines($ng->{error_log});
    is(scalar @bad, 0, "$ng->{name}: no alert, no crashed worker")
        or diag(join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
}

done_testing();
