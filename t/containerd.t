#!/usr/bin/perl

# containerd itself through the mirror: a real `ctr images pull` with a
# hosts.toml mirror, for a registry whose name has a port.  containerd
# sends "?ns=127.0.0.1%3A<port>" (Go's URL encoding of the colon); the
# mirror decodes that escape and routes by it.  The hosts.toml "server"
# is a closed port, so the pull can only succeed through the mirror.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use RegistryTest;

for my $tool (qw(containerd ctr)) {
    if (!grep { -x "$_/$tool" } split /:/, $ENV{PATH}) {
        plan skip_all => "$tool is not installed (apt-get install containerd)";
    }
}

my $d = test_dir();
my $reg = start_registry();
my $img = build_image(layers => [{ a => "containerd a\n" },
                                 { b => "containerd b\n" x 1000 }]);
push_image($img, $reg, 'team/app:1');

my $name = "127.0.0.1:$reg->{port}";
my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry $name $reg->{url};
    server {
        listen 127.0.0.1:$port;
        include $ROOT/registry_params;
    }
EOF

# containerd with everything in the test folder, the native snapshotter
my ($cd, $sock) = start_containerd($d);
ok($cd, 'containerd is up') or diag(slurp("$d/containerd.log"));

my $closed = free_port();
my $hosts = "$d/certs.d/$name";
system('mkdir', '-p', $hosts);
spew("$hosts/hosts.toml", <<"EOF");
server = "http://127.0.0.1:$closed"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
EOF

my $out = run_out('ctr', '-a', $sock, '-n', 'registry-test', 'images',
                  'pull', '--snapshotter', 'native', '--hosts-dir',
                  "$d/certs.d", "$name/team/app:1");
is($?, 0, "ctr images pull $name/team/app:1 through the mirror")
    or diag($out);

# (nginx logs a request once its last byte is written, which can be
# just after ctr has it and is gone: read with a bounded wait)
my @log;
eventually(sub {
    @log = file_lines($ng->{access_log});
    grep({ m{"GET /v2/team/app/blobs/sha256:\w+\?ns=} && / 200 / } @log) >= 3 });
ok(grep({ m{"HEAD /v2/team/app/manifests/1\?ns=127\.0\.0\.1%3A$reg->{port} }
        && / 200 / } @log),
   'containerd resolved the tag with ns=127.0.0.1%3A<port>: 200')
    or diag(join "\n", @log);
my @blobs = grep { m{"GET /v2/team/app/blobs/sha256:\w+\?ns=} && / 200 / }
            @log;
cmp_ok(scalar @blobs, '>=', 3, 'config and both layers through the mirror');

$out = run_out('ctr', '-a', $sock, '-n', 'registry-test', 'images',
               'check');
like($out, qr/\Q$name\E\/team\/app:1\s.*complete/,
     'containerd holds the whole image');

# the decoding is of that one escape only
my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json');
my $r = http_get($port, "/v2/team/app/manifests/1?ns=127.0.0.1%3a$reg->{port}",
                 method => 'HEAD', headers => \@oci);
is($r->{status}, 200, 'a lower-case %3a is the same colon');
for my $ns ("127.0.0.1%3A%35000", "127%2E0.0.1%3A$reg->{port}",
            "127.0.0.1%3A", "127.0.0.1%3") {
    $r = http_get($port, "/v2/team/app/manifests/1?ns=$ns", method => 'HEAD',
                  headers => \@oci);
    is($r->{status}, 400, "ns=$ns refused");
}
is(scalar(grep { /ns=127\.0\.0\.1%3A%35000|%2E|%3 HTTP/ }
          registry_requests($reg)), 0, 'none of those went upstream');

stop($cd);

done_testing();
