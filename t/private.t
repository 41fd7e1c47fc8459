#!/usr/bin/perl

# Private content: until the mirror authorises clients itself, what an
# upstream answers to a client's own credentials is neither stored nor
# served from the cache, so an anonymous client can never be handed it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

my $dir = test_dir();
spew("$dir/htpasswd",
     'puller:' . crypt('s3cret', '$2y$05$abcdefghijklmnopqrstuu') . "\n");
my $reg = start_registry(config => <<"EOF");
auth:
  htpasswd:
    realm: private-test
    path: $dir/htpasswd
EOF

spew("$dir/robot.cred", "puller:s3cret\n");

my $img = build_image(layers => [{ secret => "private layer\n" }]);
run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
       '--dest-creds', 'puller:s3cret', $img->{ref},
       "docker://$reg->{host}/team/private:1");

# a public registry beside it: the positive control that what the mirror
# does store shows up where the checks below look
my $pub = start_registry();
my $pub_img = build_image(layers => [{ public => "public layer\n" }]);
push_image($pub_img, $pub, 'team/public:1');

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry public.test $pub->{url};
    registry harbor.test $reg->{url};
    registry robot.test  $reg->{url} credentials=$dir/robot.cred;
    server {
        listen 127.0.0.1:$port;
        registry_default harbor.test;
        include $ROOT/registry_params;
    }
EOF

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json');
my $auth = 'Authorization: Basic ' . encode_base64('puller:s3cret', '');

my $r = http_get($port, '/v2/public.test/team/public/manifests/1',
                 headers => \@accept);
is($r->{status}, 200, 'control: a public manifest');
my $pub_layer = decode_json($r->{body})->{layers}[0]{digest};
is(http_get($port, "/v2/public.test/team/public/blobs/$pub_layer")->{status},
   200, 'control: its blob');
ok(cached_digest($ng, $pub_layer),
   'control: the public blob is in the cache folder, under its digest');

$r = http_get($port, '/v2/team/private/manifests/1', headers => \@accept);
is($r->{status}, 401, 'anonymous: 401 from the upstream');

$r = http_get($port, '/v2/team/private/manifests/1',
              headers => [@accept, $auth]);
is($r->{status}, 200, 'with credentials: the manifest');
my $layer = decode_json($r->{body})->{layers}[0]{digest};
is($r->{headers}{'x-registry-cache'}[0], 'BYPASS', 'not from the cache');

$r = http_get($port, "/v2/team/private/blobs/$layer", headers => [$auth]);
is($r->{status}, 200, 'with credentials: the blob');
is('sha256:' . sha256_hex($r->{body}), $layer, 'blob bytes');

isnt($layer, $pub_layer, 'the private layer is not the public one');
ok(!grep({ /private|\Q$layer\E/ } keys %{ cache_entries("$ng->{dir}/cache") }),
   'nothing fetched with credentials was stored');

for my $path ('/v2/team/private/manifests/1', "/v2/team/private/blobs/$layer",
              "/v2/other/repo/blobs/$layer")
{
    $r = http_get($port, $path, headers => \@accept);
    is($r->{status}, 401, "anonymous $path: 401, not a cached copy");
}

is(at_least(3, sub { scalar grep { m{^GET /v2/\w+/\w+/blobs/} }
                        registry_requests($reg) }),
   3, 'each blob request went to the upstream to be authorised');

# the mirror's own (robot) credentials: Basic, from a file
$r = http_get($port, '/v2/robot.test/team/private/manifests/1',
              headers => \@accept);
is($r->{status}, 200, 'robot credentials: the private manifest');
ok(!$r->{headers}{'www-authenticate'}, '... no challenge reached the client');
$r = http_get($port, "/v2/robot.test/team/private/blobs/$layer");
is('sha256:' . sha256_hex($r->{body}), $layer, '... and the blob');
my $basic = encode_base64('puller:s3cret', '');
# control: both logs are the ones nginx writes, and have this test's lines
like(slurp($ng->{access_log}),
     qr{"GET /v2/robot\.test/team/private/manifests/1 HTTP/1\.1" 200 },
     'control: the access log has the robot-credentials request');
like(slurp($ng->{error_log}), qr/\[notice\] .*start worker process/,
     'control: the error log is the one nginx writes');
unlike(slurp($ng->{error_log}) . slurp($ng->{access_log}),
       qr/s3cret|\Q$basic\E/, 'the credentials are in no log');
my $out = "$dir/pull";
my $log = run_out('skopeo', '--insecure-policy', 'copy',
                  '--src-tls-verify=false',
                  "docker://127.0.0.1:$port/robot.test/team/private:1",
                  "dir:$out");
is($?, 0, 'skopeo pull through the mirror with its robot account')
    or diag $log;

done_testing();
