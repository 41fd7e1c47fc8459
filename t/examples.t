#!/usr/bin/perl

# Every file in conf-examples/ loads and serves: its upstream URLs are
# pointed at a test registry and an image is pulled with skopeo through
# each registry it declares.  "make run" (the README's quick start) starts
# the default mirror in the foreground with the port and cache folder
# overridden, cache folder writable by the workers.
#
# An example whose registry is "auth=client" (harbor-edge.conf, clients
# log in themselves) runs in front of the edge tests' private registry
# (t/lib/Edge.pm: distribution over TLS with token auth, the token server
# in permissions mode), with a test certificate for its TLS listener: skopeo
# logs in as a user who may pull a private repository and copies it, and
# an anonymous copy of that repository fails.
#
# The regional examples run together: two parents from
# regional-parent.conf (127.0.0.2 and 127.0.0.3, each its own
# registry_node_id) in front of two distribution registries standing in
# for the regions, and an edge from regional-edge.conf in front of them.
# A pull through the edge comes from the first region (apac); with apac
# stopped, a pull of an image no node has seen comes from us.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use File::Path qw(make_path);
use RegistryTest;
use Edge;

# an open registry, and one that wants the account the examples'
# credentials files hold
my $reg = start_registry();
my $img = build_image(layers => [{ a => "example\n" }, { b => "two\n" }]);
push_image($img, $reg, 'library/app:1');
push_image($img, $reg, 'org/app:1');
my $digest = upstream_digest($reg, 'library/app', '1');

my $cred = test_dir() . '/account.cred';
spew($cred, "account:account-secret\n");
spew(test_dir() . '/htpasswd', 'account:'
     . crypt('account-secret', '$2y$05$abcdefghijklmnopqrstuu') . "\n");
my $locked = start_registry(config => "auth:\n  htpasswd:\n    realm: t\n"
                            . "    path: ${\ test_dir()}/htpasswd\n");
for my $name ('library/app:1', 'org/app:1') {
    run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
           '--dest-creds', 'account:account-secret', $img->{ref},
           "docker://$locked->{host}/$name");
}

# The operator's part of an example: lines that are not blank or comments.
sub config_lines {
    return scalar grep { !/^\s*(#|$)/ } split /\n/, $_[0];
}

my @examples = glob("$ROOT/conf-examples/*.conf");
ok(scalar @examples, 'there are examples');
my @regional = grep { m{/regional-[^/]*$} } @examples;
@examples = grep { !m{/regional-[^/]*$} } @examples;

# nginx -t on the config a test started, in its folder
sub nginx_t {
    my ($label, $ng) = @_;
    my $out = run_out($NGINX, '-t', '-p', "$ng->{dir}/",
                      '-c', "$ng->{dir}/nginx.conf", '-e', "$ng->{dir}/t.log");
    is($?, 0, "$label: nginx -t") or diag $out . slurp("$ng->{dir}/t.log");
}

# The private registry, started when an example wants it: Harbor's part
# (registry harbor.test, token server, users, images) without a mirror.
my $e;
sub edge {
    return $e //= Edge::start(no_mirror => 1);
}

# An auth=client example's config, for the private registry: upstream
# harbor.test is the registry's port (its certificate names harbor.test,
# from the CA the mirror trusts), the token server is plain http on
# loopback (a realm the mirror must be told it may use, as t/lib/Edge.pm's
# mirror is), and the listener gets a certificate from the same CA.
sub edge_conf {
    my ($conf) = @_;
    my $e = edge();
    $e->{mirror_cert} //= make_cert($e->{ca}, 'mirror.test', 'DNS:localhost',
                                    'IP:127.0.0.1');
    my ($crt, $key) = @{ $e->{mirror_cert} };
    $conf =~ s{^(\s*registry\s+\S+\s+)https?://[^\s;]+(?=\s+auth=client)}
              {$1https://harbor.test}mg;
    $conf =~ s{^(\s*ssl_certificate)\s+[^;]+}{$1 $crt}mg;
    $conf =~ s{^(\s*ssl_certificate_key)\s+[^;]+}{$1 $key}mg;
    my $upstream = <<"EOF";
    upstream harbor.test { server 127.0.0.1:$e->{reg}{port}; }
    registry_redirect_http on;
    registry_redirect_allow 127.0.0.1/32;
EOF
    $conf =~ s{^(http\s*\{\n)}{$1$upstream}m or die 'no http {} line';
    return $conf;
}

# skopeo through an auth=client example: login, copy, and the anonymous
# copy that must fail; then password guessing through the relay runs into
# the example's limit_req.  skopeo 1.9.3 asks the relay for a token once
# for the anonymous copy, once a login, and once for the manifest and
# once a blob of each copy: 10 here, well within the example's burst.
sub edge_pulls {
    my ($label, $d, $port, $conf) = @_;
    my $m = "127.0.0.1:$port";
    my $img = $e->{images}{team_a};
    make_path("$d/certs");
    spew("$d/certs/ca.crt", slurp($e->{ca}{crt}));
    my @sk = ('skopeo', '--insecure-policy');

    my $log = run_out(@sk, 'copy', '--src-cert-dir', "$d/certs",
                      '--src-no-creds', "docker://$m/$img->{ref}",
                      "dir:$d/pull-anonymous");
    isnt($?, 0, "$label: anonymous copy of $img->{repo} refused");
    like($log, qr/unauthorized|authentication required|denied/i,
         "$label: ... by the mirror") or diag $log;

    $log = run_out(@sk, 'login', '--cert-dir', "$d/certs", '--authfile',
                   "$d/wrong.json", '-u', 'alice', '-p', 'not-alice-pw', $m);
    isnt($?, 0, "$label: skopeo login with a wrong password refused");

    $log = run_out(@sk, 'login', '--cert-dir', "$d/certs", '--authfile',
                   "$d/alice.json", '-u', 'alice', '-p',
                   $e->{users}{alice}, $m);
    is($?, 0, "$label: skopeo login as alice") or diag $log;
    $log = run_out(@sk, 'copy', '--src-cert-dir', "$d/certs",
                   '--src-authfile', "$d/alice.json",
                   "docker://$m/$img->{ref}", "dir:$d/pull-alice");
    is($?, 0, "$label: alice copies $img->{repo} through the mirror")
        or diag $log;
    is('sha256:' . sha256_hex(slurp("$d/pull-alice/manifest.json")),
       $img->{digest}, "$label: $img->{repo} manifest digest");
    my @got = grep { -f "$d/pull-alice/" . substr($_, 7) } @{ $img->{blobs} };
    is(scalar @got, scalar @{ $img->{blobs} }, "$label: ... every blob");

    # the tag's history, from the operator's location
    my ($name) = $conf =~ /^\s*registry\s+(\S+)\s+\S+\s+auth=client/m;
    if ($conf =~ /registry_tag_history_api/) {
        my $r = Edge::https($e, 'GET', "/_registry/history?registry=$name"
                            . "&repository=$img->{repo}&tag=$img->{tag}",
                            port => $port);
        is($r->{status}, 200, "$label: $name tag history");
        is($r->{json}{history}[0]{digest}, $img->{digest},
           "$label: $name tag history has the digest");
    }

    # a password guesser, as docker asks for a token: refused by the
    # upstream's realm (401) until the relay's limit_req stops it (503)
    return unless $conf =~ /^\s*limit_req\s/m;
    my (@seen, $r);
    for my $guess (1 .. 500) {
        $r = Edge::https($e, 'GET', "/_registry/auth?account=alice"
                         . "&service=$name&scope=repository%3A"
                         . Edge::esc($img->{repo}) . '%3Apull',
                         port => $port, headers => [
                         Edge::basic('alice', "guess-$guess")]);
        push @seen, $r->{status};
        last if $r->{status} != 401;
    }
    is($r->{status}, 503, "$label: password guessing through the relay "
                          . 'is stopped by its limit_req')
        or diag "answers: @seen";
    ok(@seen > 1, "$label: ... after the upstream refused the first guesses")
        or diag "answers: @seen";
}

for my $example (@examples) {
    (my $label = $example) =~ s{.*/}{};
    my $d = test_dir() . "/$label";
    make_path($d);
    chmod 0755, $d;
    my $port = free_port();

    # the same rewriting "make run" does, then every upstream -> test registry
    my $out = run_out('make', '-s', '-C', $ROOT, 'run-conf',
                      "CONF=$example", "PORT=$port", "CACHE=$d/cache",
                      "RUN_DIR=$d", 'RESOLVER=127.0.0.1',
                      'MODULE_SO=' . module_path());
    is($?, 0, "$label: make run-conf") or diag $out;
    my $conf = slurp("$d/nginx.conf");
    my @names = $conf =~ /^\s*registry\s+(\S+)\s+https?:/mg;
    ok(scalar @names, "$label: declares registries (@names)");
    my $edge = $conf =~ /^\s*registry\s[^;]*\bauth=client\b/m;
    if ($edge) {
        $conf = edge_conf($conf);
    } else {
        # registries with credentials go to the registry that wants them
        $conf =~ s{^(\s*registry\s+\S+\s+)https?://[^\s;]+
                   (\s+credentials=)\S+;}
                  {$1$locked->{url}$2$cred;}mgx;
        $conf =~ s{^(\s*registry\s+\S+\s+)https?://[^\s;]+}
                  {$1$reg->{url}}mg;
    }
    $conf =~ s{^(\s*access_log)\s+[^;]+}{$1 $d/access.log}mg;
    $conf =~ s{^(\s*error_log)\s+[^;]+}{$1 $d/error.log}mg;

    ok(config_lines(slurp($example)) <= 30,
       "$label: at most 30 lines of operator-written config");

    my $ng = start_nginx(conf => $conf, ports => [$port],
                         $edge ? (ca => slurp($SYSTEM_CA)
                                        . slurp($e->{ca}{crt})) : ());
    nginx_t($label, $ng);
    if ($edge) {
        edge_pulls($label, $d, $port, $conf);
        stop($ng->{pid});
        next;
    }

    for my $name (@names) {
        my $repo = $name eq 'docker.io' ? 'app' : 'org/app';
        my $out_dir = "$d/pull-$name";
        my $log = run_out('skopeo', '--insecure-policy', 'copy',
                          '--src-tls-verify=false',
                          "docker://127.0.0.1:$port/$name/$repo:1",
                          "dir:$out_dir");
        is($?, 0, "$label: pull $name/$repo through the mirror")
            or diag $log;
        is('sha256:' . sha256_hex(slurp("$out_dir/manifest.json")),
           $digest, "$label: $name manifest digest");

        # the tag's history, from the operator's location
        next unless $conf =~ /registry_tag_history_api/;
        my $upstream_repo = $name eq 'docker.io' ? 'library/app' : $repo;
        my $r = http_get($port, "/_registry/history?registry=$name"
                                . "&repository=$upstream_repo&tag=1");
        is($r->{status}, 200, "$label: $name tag history");
        is($r->{json}{history}[0]{digest}, $digest,
           "$label: $name tag history has the digest");
    }
    # the operator's health and metrics locations, from this address
    if ($conf =~ /registry_health/) {
        my $h = http_get($port, '/health');
        is($h->{status} . ' ' . (eval { $h->{json}{status} } // ''), '200 ok',
           "$label: health ok after the pulls") or diag $h->{body};
        is(http_get($port, '/health', local => '127.0.0.9')->{status}, 403,
           "$label: health refused to another address");
    }
    if ($conf =~ /registry_metrics/) {
        like(http_get($port, '/metrics')->{body},
             qr/^nginx_registry_requests_total\{/m, "$label: metrics");
    }
    stop($ng->{pid});
}

# --- the regional examples: two parents, an edge in front of them -----------

# An example's config as "make run" would write it, with its logs (and
# their formats) in $d.
sub run_conf {
    my ($example, $d, $port) = @_;
    (my $label = $example) =~ s{.*/}{};
    make_path($d);
    chmod 0755, $d;
    my $out = run_out('make', '-s', '-C', $ROOT, 'run-conf',
                      "CONF=$example", "PORT=$port", "CACHE=$d/cache",
                      "RUN_DIR=$d", 'RESOLVER=127.0.0.1',
                      'MODULE_SO=' . module_path());
    is($?, 0, "$label: make run-conf") or diag $out;
    ok(config_lines(slurp($example)) <= 40,
       "$label: at most 40 lines of operator-written config");
    my $conf = slurp("$d/nginx.conf");
    $conf =~ s{^(\s*access_log)\s+[^\s;]+}{$1 $d/access.log}mg;
    $conf =~ s{^(\s*error_log)\s+[^;]+}{$1 $d/error.log}mg;
    return $conf;
}

my ($parent_example) = grep { /regional-parent\.conf$/ } @regional;
my ($edge_example) = grep { /regional-edge\.conf$/ } @regional;
ok($parent_example && $edge_example, 'regional-parent.conf and '
   . 'regional-edge.conf are there');

# the regions the parent example declares: upstream{} block and host=
my $pexample = slurp($parent_example);
my %region_host = $pexample =~
    /^\s*registry(?:_region)?\s+\S+\s+https:\/\/(\w+)\s+host=([^\s;]+)/mg;
my ($first) = $pexample =~ /^\s*registry_region_first\s+(\w+);/m;
is_deeply([sort keys %region_host], ['apac', 'us'],
          'regional-parent.conf: regions apac and us, each with host=');
is($first, 'apac', '... apac first');

# each region a registry over TLS whose certificate names only its host=
# (the block's name would fail the parents' certificate check), from a
# test CA the parents trust; the same two images in both
my $ca = make_ca();
my %region;
for my $block (sort keys %region_host) {
    $region{$block} = start_registry(
        tls => make_cert($ca, $region_host{$block}));
}
my $rimg = build_image(layers => [{ r => "regional\n" }, { s => "two\n" }]);
my $fresh = build_image(layers => [{ f => "fresh, for failover\n" }]);
for my $reg (values %region) {
    push_image($rimg, $reg, 'org/app:1');
    push_image($fresh, $reg, 'org/fresh:1');
}
sub layout_digest {
    return decode_json(slurp("$_[0]{layout}/index.json"))
           ->{manifests}[0]{digest};
}

# two parents from the one file: the blocks' servers -> the regions'
# registries, listen on 127.0.0.2 and .3, each its own id (an operator
# edits these per node)
my $pport = free_port();
my (@parents, @paddr);
for my $i (1, 2) {
    my $d = test_dir() . "/regional-parent-$i";
    my $conf = run_conf($parent_example, $d, $pport);
    my $addr = "127.0.0.@{[$i + 1]}:$pport";
    $conf =~ s#^(\s*upstream\s+(\w+)\s*\{[^\}]*?\bserver\s+)[^\s;]+#
              $1 . "127.0.0.1:" . $region{$2}{port}#mge;
    $conf =~ s{^(\s*listen\s+)127\.0\.0\.1:$pport}{$1$addr}m
        or die 'no listen line';
    $conf =~ s{^(\s*registry_node_id\s+)\S+?-\d+;}{${1}parent-apac-$i;}m
        or die 'no registry_node_id line';
    my $ng = start_nginx(conf => $conf, ports => [$addr],
                         ca => slurp($SYSTEM_CA) . slurp($ca->{crt}));
    nginx_t("regional-parent.conf ($addr)", $ng);
    $ng->{log} = "$d/access.log";
    $ng->{error_log} = "$d/error.log";
    push @parents, $ng;
    push @paddr, $addr;
}

# the edge: its upstream's servers -> the parents, a test certificate
my $eport = free_port();
my $ed = test_dir() . '/regional-edge';
my $econf = run_conf($edge_example, $ed, $eport);
my $n = 0;
$econf =~ s#^(\s*upstream\s+parents\s*\{[^\}]*)\}#
    (my $b = $1) =~ s/^(\s*server\s+)[^\s;]+/$1 . $paddr[$n++]/mge;
    "$b}"#me or die 'no upstream parents';
is($n, 2, 'regional-edge.conf: two parents in its upstream');
my ($ecrt, $ekey) = @{ make_cert($ca, 'registry-mirror.example.com',
                                 'IP:127.0.0.1') };
$econf =~ s{^(\s*ssl_certificate)\s+[^;]+}{$1 $ecrt}mg;
$econf =~ s{^(\s*ssl_certificate_key)\s+[^;]+}{$1 $ekey}mg;
like($econf, qr{^\s*registry\s+registry\.example\.com\s+http://parents/registry\.example\.com;}m,
     'regional-edge.conf: the parents by path prefix');
my $edge_ng = start_nginx(conf => $econf, ports => [$eport]);
nginx_t('regional-edge.conf', $edge_ng);

sub parent_lines {
    my ($re) = @_;
    return grep { /$re/ } map { file_lines($_->{log}) } @parents;
}
sub region_gets {
    my ($block, $repo) = @_;
    return scalar grep { m{^GET /v2/org/\Q$repo\E/(?:blobs|manifests)/} }
                  registry_requests($region{$block});
}

# a pull through the edge, by path prefix and by the default route
my ($ok, $log, $dir) = skopeo_pull($eport, 'registry.example.com/org/app:1');
ok($ok, 'regional: skopeo pull through the edge') or diag $log;
is('sha256:' . sha256_hex(slurp("$dir/manifest.json")), layout_digest($rimg),
   'regional: ... manifest digest');
($ok, $log) = skopeo_pull($eport, 'org/app:1');
ok($ok, 'regional: ... and by the default route') or diag $log;
ok(eventually(sub { parent_lines(qr{"GET /v2/registry\.example\.com/org/app/blobs/\S+ HTTP/1\.1" 200 \d+ region=apac cache=MISS .*loop="edge-apac-1"}) }),
   'regional: parents filled blobs from apac, asked by the edge');
ok(!parent_lines(qr/region=us/), 'regional: ... nothing from us');
ok(region_gets('apac', 'app'), 'regional: apac served the image');
is(region_gets('us', 'app'), 0, 'regional: us served none of it');
my $filled = () = parent_lines(qr{/blobs/\S+ HTTP/1\.1" 200 \d+ region=apac cache=MISS});
is($filled, 3, 'regional: each of its 3 blobs filled once, on one parent');

# failover: apac stopped, an image no node has seen comes from us
stop($region{apac}{pid});
($ok, $log, $dir) = skopeo_pull($eport, 'registry.example.com/org/fresh:1');
ok($ok, 'regional: apac stopped, a pull of a fresh image through the edge')
    or diag $log;
is('sha256:' . sha256_hex(slurp("$dir/manifest.json")), layout_digest($fresh),
   'regional: ... manifest digest');
ok(eventually(sub { parent_lines(qr{"GET /v2/registry\.example\.com/org/fresh/blobs/\S+ HTTP/1\.1" 200 \d+ region=us cache=MISS}) }),
   'regional: ... its blobs from us');
ok(region_gets('us', 'fresh'), 'regional: us served it');
is(region_gets('apac', 'fresh'), 0, 'regional: apac served none of it');
ok((grep { /connect\(\) failed .*upstream: "https:\/\/127\.0\.0\.1:$region{apac}{port}\// }
    map { file_lines($_->{error_log}) } @parents),
   'regional: ... after apac refused the connection');

stop($_->{pid}) for $edge_ng, @parents;

# make run: the quick start, with the port and cache folder overridden
my $d = test_dir() . '/quickstart';
make_path($d);
chmod 0755, $d;
my $port = free_port();
my $make = spawn(cmd => ['make', '-s', '-C', $ROOT, 'run', "PORT=$port",
                         "CACHE=$d/cache", "RUN_DIR=$d/run",
                         'RESOLVER=127.0.0.1', 'MODULE_SO=' . module_path(),
                         "NGINX_BIN=$NGINX"],
                 stdout => "$d/out.log");
ok(wait_port($port, pid => $make), 'make run: listening on the port')
    or diag slurp("$d/out.log");

my $r = http_get($port, '/v2/');
is($r->{status}, 200, 'make run: GET /v2/');
is($r->{headers}{'docker-distribution-api-version'}[0], 'registry/2.0',
   'make run: API version header');

ok(-d "$d/cache", 'make run: cache folder created');
ok(-f "$d/cache-tag-history", 'make run: tag history journal beside it');
SKIP: {
    skip 'workers run as www-data only when started as root', 1 if $>;
    is((stat "$d/cache")[4], scalar getpwnam('www-data'),
       'make run: cache folder owned by the workers');
}
like(slurp("$d/out.log"), qr{"GET /v2/ HTTP/1.1" 200}, 'make run: access log');

my ($pid) = slurp("$d/run/nginx.pid") =~ /(\d+)/;
ok($pid, 'make run: nginx pid file');
stop($pid);
stop($make);
ok(!kill(0, $pid), 'make run: stopped');

done_testing();
