#!/usr/bin/perl

# Every file in conf-examples/ loads and serves: its upstream URLs are
# pointed at a test registry and an image is pulled with skopeo through
# each registry it declares.  "make run" (the README's quick start) starts
# the default mirror in the foreground with the port and cache folder
# overridden, cache folder writable by the workers.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use RegistryTest;

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
    # registries with credentials go to the registry that wants them
    $conf =~ s{^(\s*registry\s+\S+\s+)https?://[^\s;]+(\s+credentials=)\S+;}
              {$1$locked->{url}$2$cred;}mg;
    $conf =~ s{^(\s*registry\s+\S+\s+)https?://[^\s;]+}{$1$reg->{url}}mg;
    $conf =~ s{^(\s*access_log)\s+[^;]+}{$1 $d/access.log}mg;
    $conf =~ s{^(\s*error_log)\s+[^;]+}{$1 $d/error.log}mg;

    ok(config_lines(slurp($example)) <= 30,
       "$label: at most 30 lines of operator-written config");

    my $ng = start_nginx(conf => $conf, ports => [$port]);

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
    stop($ng->{pid});
}

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
